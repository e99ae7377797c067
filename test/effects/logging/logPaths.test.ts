/**
 * Issue 11 item 5: path problems under the run log are start-up errors naming the config key, the
 * path and the fix (`openRunLog`), and never a throw out of `initLogging` / `createRunLogger`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createRunLogger,
  initLogging,
  openRunLog,
} from '../../../src/effects/logging/runLogger.js';
import type { FsError } from '../../../src/effects/storage/atomic.js';
import { createState } from '../../../src/state/runner/RunnerState.js';
import { logPath } from '../../../src/state/runner/selectors.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-logpath-'));
  writeFileSync(join(root, 'file'), 'a regular file\n');
  mkdirSync(join(root, 'folder'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const memory = () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return { stream, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
};

const LONG = 'n'.repeat(300);

/** [what, config (relative to root), tag, the message with `{log}` for the log path]. */
const cases: readonly (readonly [
  string,
  (r: string) => Record<string, unknown>,
  string,
  string,
])[] = [
  [
    'projectRoot under a regular file',
    (r) => ({ projectRoot: join(r, 'file', 'runs') }),
    'PathNotADirectory',
    'projectRoot: cannot open the run log {log}: a part of the path is a file, not a folder (ENOTDIR); set projectRoot to a path under a folder, or move that file away',
  ],
  [
    'a NUL byte in projectRoot',
    (r) => ({ projectRoot: join(r, 'a\0b') }),
    'FileSystemFailed',
    'projectRoot: cannot open the run log {log}: the path contains a NUL byte; remove it from projectRoot',
  ],
  [
    'a folder name over 255 bytes in projectRoot',
    (r) => ({ projectRoot: join(r, LONG) }),
    'FileSystemFailed',
    'projectRoot: cannot open the run log {log}: a name in the path is longer than the file system allows (ENAMETOOLONG, usually 255 bytes); shorten projectRoot',
  ],
  [
    'dir under a regular file',
    (r) => ({ dir: join(r, 'file', 'run') }),
    'PathNotADirectory',
    'dir: cannot open the run log {log}: a part of the path is a file, not a folder (ENOTDIR); set dir to a path under a folder, or move that file away',
  ],
  [
    'logPath under a regular file',
    (r) => ({ projectRoot: r, logPath: join(r, 'file', 'run.log') }),
    'PathNotADirectory',
    'logPath: cannot open the run log {log}: a part of the path is a file, not a folder (EEXIST); set logPath to a path under a folder, or move that file away',
  ],
  [
    'logPath with a file name over 255 bytes',
    (r) => ({ projectRoot: r, logPath: join(r, `${LONG}.log`) }),
    'FileSystemFailed',
    'logPath: cannot open the run log {log}: a name in the path is longer than the file system allows (ENAMETOOLONG, usually 255 bytes); shorten logPath',
  ],
  [
    'logPath naming a folder',
    (r) => ({ projectRoot: r, logPath: join(r, 'folder') }),
    'FileSystemFailed',
    'logPath: cannot open the run log {log}: it is a folder (EISDIR); set logPath to a file path',
  ],
];

describe('run log paths (issue 11 item 5)', () => {
  it.each(cases)(
    '%s: openRunLog is a Left naming the key, the path and the fix',
    (_, config, tag, message) => {
      const state = createState(config(root), { timestamp: 'T' });
      const opened = openRunLog(state);
      expect(E.isLeft(opened) ? opened.left : 'opened').toMatchObject({
        _tag: tag,
        path: logPath(state),
        message: message.replace('{log}', logPath(state)),
      });
    },
  );

  it.each(cases)('%s: initLogging does not throw, reports it and logs to stdout', (_, config) => {
    const state = createState({ ...config(root), logFormat: 'json' }, { timestamp: 'T' });
    const out = memory();
    const reported: FsError[] = [];
    const logger = initLogging(state, { stdout: out.stream, onFileError: (e) => reported.push(e) });
    logger.info('still logging');
    expect(reported).toHaveLength(1);
    expect(reported[0]?.path).toBe(logPath(state));
    expect(out.lines().map((l) => [l['level'], l['msg']])).toEqual([
      [50, reported[0]?.message],
      [30, 'still logging'],
    ]);
  });

  it('createRunLogger with a logPath under a file: no throw, onFileError names logPath', () => {
    const file = join(root, 'file', 'run.log');
    const reported: FsError[] = [];
    const out = memory();
    const logger = createRunLogger({
      logPath: file,
      stdout: out.stream,
      onFileError: (e) => reported.push(e),
    });
    logger.info('line');
    expect(reported.map((e) => [e._tag, e.path])).toEqual([['PathNotADirectory', file]]);
    expect(reported[0]?.message).toContain('logPath');
  });

  it('log: false or another rank: no file, no error', () => {
    const off = createState(
      { projectRoot: join(root, 'file', 'x'), log: false },
      { timestamp: 'T' },
    );
    expect(openRunLog(off)).toEqual(E.right(undefined));
    const rank1 = createState(
      { projectRoot: join(root, 'file', 'x') },
      { timestamp: 'T', rank: 1, worldSize: 2 },
    );
    expect(openRunLog(rank1)).toEqual(E.right(undefined));
  });

  it('a good path: openRunLog opens it and initLogging writes to it', () => {
    const state = createState({ projectRoot: root }, { timestamp: 'T' });
    const opened = openRunLog(state);
    if (E.isLeft(opened) || opened.right === undefined) throw new Error('expected a file');
    const logger = initLogging(state, { file: opened.right, stdout: memory().stream });
    logger.info('hello');
    expect(opened.right.fileError()).toBeUndefined();
    opened.right.close();
  });
});
