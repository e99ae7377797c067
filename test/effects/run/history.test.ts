/**
 * The action log's reader and writer: every line decoded (a bad one named by file and line),
 * replay targets checked, the schema header, the per-step line serializer, linear size.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fc, test as prop } from '@fast-check/vitest';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { actionLine, openHistory, replayLog } from '../../../src/effects/run/history.js';
import { actions, reduce, type Action } from '../../../src/reducers/actions.js';
import {
  createState,
  persistState,
  type RunnerState,
} from '../../../src/state/runner/RunnerState.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-history-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const s0 = (): RunnerState => createState({ projectRoot: root, epochEnd: 3 });

/** A log as the previous version wrote it: a snapshot line, then action lines. */
const v1Log = (state: RunnerState, lines: readonly string[]): string =>
  [JSON.stringify({ snapshot: persistState(state), actions: 0 }), ...lines].join('\n') + '\n';

const ok = JSON.stringify({ action: actions.stepProgress() });

describe('replayLog decodes every line', () => {
  it.each([
    ['an unknown action', '{"action":{"type":"fly"}}', 'type: expected one of'],
    ['a null action', '{"action":null}', 'expected an action object'],
    ['a bad mode', '{"action":{"type":"setMode","mode":"fast"}}', 'mode: expected one of'],
    ['negative steps', '{"action":{"type":"stepProgress","steps":-1}}', 'steps: expected'],
    ['a string epoch', '{"action":{"type":"startEpoch","epoch":"x"}}', 'epoch: expected'],
    ['an extra key', '{"action":{"type":"resetMeters"},"x":1}', 'expected {"action": ...}'],
    ['not JSON', '{"action":{"type":', 'not valid JSON'],
    ['a foreign line', '[1,2]', 'expected {"action": ...} or'],
  ])('%s is an error naming the file and line', async (_what, bad, why) => {
    const path = join(root, 'history.jsonl');
    await writeFile(path, v1Log(s0(), [ok, ok, bad, ok]));
    const r = await replayLog(path);
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) {
      expect(r.left.message.startsWith(`${path}:4: `)).toBe(true);
      expect(r.left.message).toContain(why);
    }
  });

  it.each([
    [{ action: 100 }, 'the log holds 3 actions'],
    [{ action: Number.NaN }, 'expected a non-negative integer'],
    [{ action: -1 }, 'expected a non-negative integer'],
    [{ action: 1.5 }, 'expected a non-negative integer'],
    [{ epoch: -1 }, 'expected a non-negative integer'],
    [{ epoch: 7 }, 'the log ends in epoch 0'],
  ])('target %j outside the log is an error', async (target, why) => {
    const path = join(root, 'history.jsonl');
    await writeFile(path, v1Log(s0(), [ok, ok, ok]));
    const r = await replayLog(path, target);
    expect(E.isLeft(r) && r.left.message.startsWith(`${path}: cannot replay to `)).toBe(true);
    expect(E.isLeft(r) && r.left.message).toContain(why);
    expect(await replayLog(path, { action: 3 })).toMatchObject({ right: { actions: 3 } });
  });
});

const write = async (path: string, start: RunnerState, xs: readonly Action[], every = 1000) => {
  const opened = await openHistory(path, start, { snapshotEvery: every });
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  let s = start;
  for (const a of xs) {
    s = reduce(s, a);
    opened.right.writer.append(a, s);
  }
  const closed = await opened.right.writer.close();
  if (E.isLeft(closed)) throw new Error(closed.left.message);
  return s;
};

/** The demo's actions per epoch: Iris, 8 train steps, 2 val steps, a result. */
const epoch = (e: number): Action[] => {
  const xs: Action[] = [actions.startEpoch(e), actions.setMode('train'), actions.resetMeters()];
  for (let i = 0; i < 8; i++)
    xs.push(
      actions.stepProgress(),
      actions.updateMeters({ loss: 1 / (i + e + 1), accuracy: 0.5 }, 16),
    );
  xs.push(actions.setMode('eval'), actions.resetMeters());
  for (let i = 0; i < 2; i++) xs.push(actions.updateMeters({ loss: 0.3, accuracy: 0.9 }, 16));
  xs.push(
    actions.appendResult({
      train: { loss: 0.5, accuracy: 0.8 },
      val: { loss: 0.3, accuracy: 0.9 },
    }),
  );
  return xs;
};

describe('the log file', () => {
  it('starts with a schema header; a newer schema is refused with the fix', async () => {
    const path = join(root, 'history.jsonl');
    await write(path, s0(), epoch(0));
    expect((await readFile(path, 'utf8')).split('\n')[0]).toBe('{"danlingLog":2}');
    await writeFile(path, `{"danlingLog":3}\n${ok}\n`);
    const r = await replayLog(path);
    expect(E.isLeft(r) && r.left.message).toContain(
      `${path}:1: the log was written by a newer danling`,
    );
  });

  it('grows linearly: at most 100 bytes per action, snapshots not repeating the results', async () => {
    const sizes: number[] = [];
    for (const epochs of [200, 800]) {
      const path = join(root, `h${epochs}.jsonl`);
      const xs = Array.from({ length: epochs }, (_, e) => epoch(e)).flat();
      const end = await write(path, s0(), xs, 100);
      sizes.push((await stat(path)).size / xs.length);
      const r = await replayLog(path);
      expect(E.isRight(r) && r.right.state).toEqual(end);
      const mid = await replayLog(path, { epoch: 123 });
      expect(E.isRight(mid) && mid.right.state.results.entries.size).toBe(124);
    }
    expect(sizes[1]).toBeLessThanOrEqual(100);
    // Four times the actions, (about) the same bytes per action.
    expect((sizes[1] ?? 0) / (sizes[0] ?? 1)).toBeLessThan(1.1);
  });

  it('a resumed run continues the action count from the log tail', async () => {
    const path = join(root, 'history.jsonl');
    const xs = [epoch(0), epoch(1)].flat();
    const mid = await write(path, s0(), xs, 7);
    const end = await write(path, mid, epoch(2), 7);
    const r = await replayLog(path);
    expect(E.isRight(r) && [r.right.actions, r.right.state]).toEqual([
      xs.length + epoch(2).length,
      end,
    ]);
  });
});

describe('actionLine', () => {
  const key = fc.string({ minLength: 1, maxLength: 8 });
  const metric = fc.oneof(fc.double({ noDefaultInfinity: false }), fc.integer());
  prop.prop([fc.dictionary(key, metric, { maxKeys: 5 }), fc.nat()])(
    'equals JSON.stringify for updateMeters and stepProgress',
    (values, n) => {
      for (const a of [actions.updateMeters(values, n), actions.stepProgress(n)]) {
        expect(actionLine(a)).toBe(JSON.stringify({ action: a }));
      }
    },
  );
  it('is undefined for a value JSON cannot hold', () => {
    expect(actionLine({ type: 'stepProgress', steps: Number.NaN })).toBeUndefined();
  });
});
