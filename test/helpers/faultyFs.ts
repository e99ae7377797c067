/**
 * A real file system with faults injected where a test asks for them: a write that fails with an
 * errno code after some bytes, or any call that fails. Everything else goes to `node:fs/promises`.
 */
import { nodeFs, type FileHandleLike, type FileSystem } from '../../src/effects/storage/atomic.js';

/** An `Error` with an errno `code`, as Node's fs throws. */
export const errno = (code: string, message = code): Error =>
  Object.assign(new Error(message), { code });

/** Options of {@link faultyFs}. */
export interface Faults {
  /** Fail writes with this code once this many bytes were written to a file (any file). */
  readonly failWriteAfter?: { readonly bytes: number; readonly code: string };
  /** Fail these calls with these codes. */
  readonly fail?: Partial<Record<keyof FileSystem, string>>;
  /** Only inject into files whose path contains this text. */
  readonly only?: string;
}

export const faultyFs = (faults: Faults): FileSystem => {
  const hits = (file: string): boolean => faults.only === undefined || file.includes(faults.only);
  const failing = <K extends keyof FileSystem>(name: K): FileSystem[K] =>
    ((...args: Parameters<FileSystem[K]>) => {
      const code = faults.fail?.[name];
      if (code !== undefined && hits(args[0]))
        return Promise.reject(errno(code, `${code}: injected ${name}`));
      return (nodeFs[name] as (...a: Parameters<FileSystem[K]>) => unknown)(...args);
    }) as FileSystem[K];
  return {
    ...nodeFs,
    rename: failing('rename'),
    link: failing('link'),
    copyFile: failing('copyFile'),
    unlink: failing('unlink'),
    readdir: failing('readdir'),
    mkdir: failing('mkdir'),
    readFile: failing('readFile'),
    stat: failing('stat'),
    open: async (file, flags, mode) => {
      const code = faults.fail?.open;
      if (code !== undefined && hits(file)) throw errno(code, `${code}: injected open`);
      const handle = await nodeFs.open(file, flags, mode);
      const limit = faults.failWriteAfter;
      if (limit === undefined || !hits(file)) return handle;
      let written = 0;
      const wrapped: FileHandleLike = {
        write: async (buffer, offset, length, position) => {
          const room = limit.bytes - written;
          if (room <= 0) throw errno(limit.code, `${limit.code}: injected write`);
          const result = await handle.write(buffer, offset, Math.min(length, room), position);
          written += result.bytesWritten;
          return result;
        },
        sync: () => handle.sync(),
        truncate: (len) => handle.truncate(len),
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
      return wrapped;
    },
  };
};
