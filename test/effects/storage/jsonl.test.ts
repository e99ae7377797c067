import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import * as E from 'fp-ts/lib/Either.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodeFs, type FileSystem } from '../../../src/effects/storage/atomic.js';
import {
  openJsonl,
  parseJsonl,
  readJsonl,
  type FsyncPolicy,
} from '../../../src/effects/storage/jsonl.js';
import type { Json } from '../../../src/state/Json.js';
import { buildFixtures, type BuiltFixtures } from '../../fixtures/build.js';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'danling-jsonl-'));
  file = path.join(dir, 'history.jsonl');
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const open = async (policy?: FsyncPolicy, fs?: FileSystem) => {
  const o = await openJsonl(file, {
    ...(policy === undefined ? {} : { fsync: policy }),
    ...(fs === undefined ? {} : { fs }),
  });
  if (E.isLeft(o)) throw new Error(o.left.message);
  return o.right;
};

const read = async () => {
  const r = await readJsonl(file);
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

describe('JSON Lines log', () => {
  it('appends values in order, numbering the lines, and reads them back', async () => {
    const { writer, lines } = await open();
    expect(lines).toBe(0);
    const values: Json[] = [{ a: 1 }, 'two\nlines', [3, null], { s: 'é' }];
    const numbers = await Promise.all(values.map((v) => writer.append(v)));
    expect(numbers).toEqual([1, 2, 3, 4].map((n) => E.right(n)));
    await writer.close();
    expect(await read()).toEqual({ values, warnings: [] });
    const again = await open();
    expect(again.lines).toBe(4);
    expect(await again.writer.append(5)).toEqual(E.right(5));
    await again.writer.close();
  });

  it('a torn last line is skipped on read, and cut off on open so appends stay clean', async () => {
    await fsp.writeFile(file, '{"i":0}\n{"i":1}\n12');
    expect(await read()).toEqual({
      values: [{ i: 0 }, { i: 1 }],
      warnings: [
        {
          _tag: 'JsonlTornLine',
          path: file,
          line: 3,
          message: `${file}:3: the last line is incomplete (a write torn by a crash); skipped`,
        },
      ],
    });
    const { writer, lines, warnings } = await open();
    expect(lines).toBe(2);
    expect(warnings.map((w) => w.message)).toEqual([
      `${file}:3: the last line is incomplete (a write torn by a crash); cut off before appending`,
    ]);
    await writer.append({ i: 2 });
    await writer.close();
    expect(await fsp.readFile(file, 'utf8')).toBe('{"i":0}\n{"i":1}\n{"i":2}\n');
  });

  it.each([
    ['{"i":0}\n{"i":\n{"i":2}\n', 2, 'not valid JSON'],
    ['{"i":0}\n\n{"i":2}\n', 2, 'an empty line'],
    ['oops\n', 1, 'not valid JSON'],
  ])('a corrupt complete line is an error naming it: %j', (text, line, why) => {
    const r = parseJsonl(Buffer.from(text), '/r/history.jsonl');
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: 'JsonlCorrupt', line });
    expect(E.isLeft(r) && r.left.message).toMatch(
      new RegExp(
        `^/r/history.jsonl:${line}: ${why}.*; the log is damaged before its end: restore it or cut it before line ${line}$`,
      ),
    );
  });

  it('refuses values that are not JSON data', async () => {
    const { writer } = await open();
    const r = await writer.append({ loss: NaN });
    expect(E.isLeft(r) && r.left._tag).toBe('JsonlInvalidValue');
    await writer.close();
    expect(await fsp.readFile(file, 'utf8')).toBe('');
  });

  it.each<[FsyncPolicy, number]>([
    ['always', 10],
    [{ every: 4 }, 2],
    ['never', 0],
  ])('fsync policy %j: %i fsyncs for 10 appends (plus one on close)', async (policy, syncs) => {
    let count = 0;
    const counting: FileSystem = {
      ...nodeFs,
      open: async (f, flags, mode) => {
        const h = await nodeFs.open(f, flags, mode);
        return {
          ...h,
          write: h.write.bind(h),
          truncate: h.truncate.bind(h),
          close: h.close.bind(h),
          sync: () => {
            if (f === file) count++;
            return h.sync();
          },
        };
      },
    };
    const { writer } = await open(policy, counting);
    for (let i = 0; i < 10; i++) await writer.append(i);
    expect(count).toBe(syncs);
    await writer.close();
    expect(count).toBe(syncs + 1);
  });
});

describe('JSON Lines under SIGKILL', () => {
  let fixtures: BuiltFixtures;
  beforeAll(async () => {
    fixtures = await buildFixtures();
  });
  afterAll(async () => {
    await fixtures.remove();
  });

  it('after each kill every appended line is there, in order, and the next process appends cleanly', async () => {
    let expected = 0;
    for (let kill = 0; kill < 12; kill++) {
      const child = spawn(process.execPath, [fixtures.script('jsonlAppender'), file], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const first = await new Promise<{ lines: number }>((resolve) => {
        createInterface({ input: child.stdout }).once('line', (t) => {
          resolve(JSON.parse(t) as { lines: number });
        });
      });
      expect(first.lines).toBe(expected);
      await new Promise((r) => setTimeout(r, 5 + ((kill * 7) % 20)));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const { values } = await read();
      expect(values.map((v) => (v as { i: number }).i)).toEqual(
        Array.from({ length: values.length }, (_, i) => i),
      );
      expect(values.length).toBeGreaterThanOrEqual(expected);
      expected = values.length;
    }
    expect(expected).toBeGreaterThan(0);
  });
});

describe('the batched line appender', () => {
  it('syncInBackground writes the buffer at once and resolves once it is fsynced; close waits for it', async () => {
    const { openLineAppender } = await import('../../../src/effects/storage/lineAppender.js');
    const opened = await openLineAppender(file, { maxLines: 1000, maxMs: 0 });
    if (E.isLeft(opened)) throw new Error(opened.left.message);
    const { appender } = opened.right;
    appender.push('{"a":1}');
    appender.push('{"a":2}');
    const synced = appender.syncInBackground();
    // Written before the fsync comes back (the loop does not wait for the disk).
    expect(await fsp.readFile(file, 'utf8')).toBe('{"a":1}\n{"a":2}\n');
    appender.push('{"a":3}');
    const closing = appender.syncInBackground();
    expect(appender.close()).toEqual(E.right(undefined));
    expect(await synced).toEqual(E.right(undefined));
    expect(await closing).toEqual(E.right(undefined));
    expect(await fsp.readFile(file, 'utf8')).toBe('{"a":1}\n{"a":2}\n{"a":3}\n');
    // After close: nothing to do, no error.
    expect(await appender.syncInBackground()).toEqual(E.right(undefined));
  });
});
