import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { initLogging, print } from '../../../src/effects/logging/runLogger.js';
import { createState } from '../../../src/state/runner/RunnerState.js';
import { logPath } from '../../../src/state/runner/selectors.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-log-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** An in-memory stdout that is not a TTY. */
const memory = () => {
  const lines: string[] = [];
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
};

describe('logging', () => {
  it('writes JSON lines bound to name, id and rank to stdout and run.log; console at logLevel', () => {
    const state = createState(
      { projectRoot: root, runName: 'log', logLevel: 'warn', logFormat: 'json' },
      { timestamp: 'T' },
    );
    const out = memory();
    const logger = initLogging(state, { stdout: out.stream });
    logger.info({ epoch: 1 }, 'only in the file');
    logger.warn('both');
    logger.debug('debug reaches the file');
    const file = readFileSync(logPath(state), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(file.map((l) => l['msg'])).toEqual([
      'only in the file',
      'both',
      'debug reaches the file',
    ]);
    expect(file[0]).toMatchObject({ run: 'DanLing-log', rank: 0, epoch: 1 });
    expect(out.lines().map((l) => l['msg'])).toEqual(['both']);
  });

  it('the text console: one compact line per event, the message alone; the fields in run.log', () => {
    const state = createState({ projectRoot: root, runName: 'log' }, { timestamp: 'T' });
    const out = memory();
    const logger = initLogging(state, { stdout: out.stream });
    logger.info({ result: { loss: 1 } }, 'epoch [0/9]loss: 1.0000');
    logger.warn({ warning: 'Tagged' }, 'a warning');
    logger.error('an error');
    expect(out.text()).toBe('epoch [0/9]loss: 1.0000\nwarning: a warning\nerror: an error\n');
    const file = readFileSync(logPath(state), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(file[0]).toMatchObject({ run: 'DanLing-log', rank: 0, result: { loss: 1 } });
    expect(file[1]).toMatchObject({ warning: 'Tagged' });
  });

  it('prints only on the main process unless forced; other ranks write no file', () => {
    const state = createState(
      { projectRoot: root, logFormat: 'json' },
      { timestamp: 'T', rank: 1, worldSize: 2 },
    );
    const out = memory();
    const logger = initLogging(state, { stdout: out.stream });
    expect(print(logger, state, 'hidden')).toBe(false);
    expect(print(logger, state, 'forced', { force: true })).toBe(true);
    expect(out.lines().map((l) => l['msg'])).toEqual(['forced']);
    expect(existsSync(logPath(state))).toBe(false);
  });

  it('loses no line when the process exits or crashes right after logging (real processes)', async () => {
    const script = join(root, 'child.ts');
    const src = new URL('../../../src/effects/logging/runLogger.ts', import.meta.url).pathname;
    const state = new URL('../../../src/state/runner/RunnerState.ts', import.meta.url).pathname;
    await writeFile(
      script,
      `import { initLogging } from '${src}';
import { createState } from '${state}';
const logger = initLogging(createState({ projectRoot: process.argv[2], runName: process.argv[3] }, { timestamp: 'T' }));
for (let i = 0; i < 500; i++) logger.info({ i }, 'line');
if (process.argv[3] === 'exit') process.exit(3);
throw new Error('boom');
`,
    );
    for (const how of ['exit', 'throw']) {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', script, root, how], { stdio: 'pipe' });
      } catch {
        // expected: a non-zero exit
      }
      const [run] = readdirSync(root).filter((d) => d.startsWith(`DanLing-${how}-`));
      const logs = readFileSync(join(root, run ?? '', 'T', 'run.log'), 'utf8');
      expect(logs.trim().split('\n')).toHaveLength(500);
    }
  });
});
