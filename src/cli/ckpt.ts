/** `danling ckpt <file>`: verifies a checkpoint and lists its tensors and embedded state. */
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { stringify } from 'yaml';
import { loadCheckpointFile } from '../effects/checkpoint/checkpointFile.js';
import { isPlainObject, type Json } from '../state/Json.js';
import { runCommand, table, usageError, type CommandDef, type CommandIo } from './args.js';

export const CKPT: CommandDef = {
  name: 'ckpt',
  usage: 'danling ckpt <file.safetensors> [--json]',
  help: `Verifies a checkpoint file (header, format, schema, length, CRC-32 checksum, tensor
offsets, state and parts JSON) and lists its tensors (name, dtype, shape, bytes) and the
runner state it holds (progress, mode, split, results, config name).
Exit status: 0 when it verifies, 1 when it does not (the reason is printed), 2 on bad input.`,
  flags: { booleans: ['json'] },
};

export const ckptCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(CKPT, argv, io, async ({ positional, flags }) => {
    if (positional.length !== 1) return usageError(CKPT, io, 'expected one checkpoint file');
    const file = path.resolve(io.cwd ?? process.cwd(), positional[0] as string);
    const loaded = await loadCheckpointFile(file);
    if (E.isLeft(loaded)) {
      if (flags['json'] === true)
        io.out(
          `${JSON.stringify({ file, ok: false, error: loaded.left._tag, message: loaded.left.message }, null, 2)}\n`,
        );
      io.err(`danling ckpt: ${loaded.left.message}\n`);
      return 1;
    }
    const c = loaded.right;
    const tensors = Object.entries(c.parts).flatMap(([part, dict]) =>
      Object.entries(dict.tensors ?? {}).map(([name, t]) => ({
        name: `${part}/${name}`,
        dtype: t.dtype,
        shape: [...t.shape],
        bytes: t.data.byteLength,
      })),
    );
    const st = isPlainObject(c.state) ? c.state : {};
    const config = isPlainObject(st['config']) ? st['config'] : {};
    const resultsList = Array.isArray(st['results']) ? st['results'] : [];
    const state: Record<string, Json> = {
      timestamp: st['timestamp'] ?? null,
      progress: st['progress'] ?? null,
      mode: st['mode'] ?? null,
      split: st['split'] ?? null,
      results: resultsList.length,
      name:
        typeof config['name'] === 'string'
          ? config['name']
          : `${typeof config['experimentName'] === 'string' ? config['experimentName'] : '?'}-${typeof config['runName'] === 'string' ? config['runName'] : '?'}`,
      rng: st['rng'] ?? null,
    };
    const parts = Object.fromEntries(
      Object.entries(c.parts).map(([p, d]) => [
        p,
        { tensors: Object.keys(d.tensors ?? {}).length, json: d.json ?? null },
      ]),
    );
    if (flags['json'] === true) {
      io.out(
        `${JSON.stringify({ file, ok: true, bytes: c.bytes, schema: c.schema, tensors, parts, state }, null, 2)}\n`,
      );
      return 0;
    }
    const total = tensors.reduce((s, t) => s + t.bytes, 0);
    io.out(
      [
        `${file}: ok (${c.bytes} bytes, schema ${c.schema}, checksum verified)`,
        '',
        `tensors (${tensors.length}, ${total} bytes):`,
        table([
          ['  NAME', 'DTYPE', 'SHAPE', 'BYTES'],
          ...tensors.map((t) => [
            `  ${t.name}`,
            t.dtype,
            `[${t.shape.join(',')}]`,
            String(t.bytes),
          ]),
        ]),
        '',
        'state:',
        stringify(state, { lineWidth: 0 }).trimEnd().replace(/^/gm, '  '),
        '',
      ].join('\n'),
    );
    return 0;
  });
