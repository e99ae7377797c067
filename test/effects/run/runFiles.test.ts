import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { actions, reduce, replay, type Action } from '../../../src/reducers/actions.js';
import {
  appendResult,
  startEpoch,
  stepProgress,
  updateMeters,
} from '../../../src/reducers/reducers.js';
import {
  createState,
  decodeState,
  type RunnerState,
} from '../../../src/state/runner/RunnerState.js';
import * as S from '../../../src/state/runner/selectors.js';
import {
  fromCheckpoint,
  fromJson,
  fromYaml,
  json,
  loadCheckpoint,
  loadPretrained,
  saveCheckpoint,
  saveResult,
  yaml,
  save,
  load,
} from '../../../src/effects/run/runFiles.js';
import { openHistory, replayLog } from '../../../src/effects/run/history.js';
import { Weights } from '../../helpers/weights.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-run-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const unwrap = async <A>(task: Promise<E.Either<{ message: string }, A>>): Promise<A> => {
  const r = await task;
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

const stateIn = (extra: object = {}, ts = '2026-11-24T00-00-00'): RunnerState =>
  createState(
    {
      projectRoot: root,
      experimentName: 'e',
      runName: 'r',
      epochEnd: 10,
      saveInterval: 2,
      seed: 0,
      ...extra,
    },
    { timestamp: ts },
  );

/** Trains "epochs" of a fake run: results improve until epoch 3, then get worse. */
const epochs = (state: RunnerState, from: number, to: number): RunnerState => {
  let s = state;
  for (let e = from; e < to; e++) {
    s = startEpoch(s, e);
    s = stepProgress(s, 5);
    s = updateMeters(s, { loss: 1 / (e + 1) });
    s = appendResult(s, { train: { loss: 1 / (e + 1) }, val: { loss: Math.abs(e - 3) + 0.5 } });
  }
  return s;
};

describe('saveCheckpoint / loadCheckpoint', () => {
  it('writes latest, epoch-N per saveInterval and best, and resumes exactly', async () => {
    const model = new Weights(new Float32Array([1, 2, 3]));
    let s = stateIn();
    for (let e = 0; e < 6; e++) {
      s = epochs(s, e, e + 1);
      model.w = model.w.map((x) => x + 1);
      await unwrap(saveCheckpoint(s, { model }));
    }
    const names = (await readdir(S.checkpointDir(s))).sort();
    expect(names).toEqual([
      'best.safetensors',
      'epoch-1.safetensors',
      'epoch-3.safetensors',
      'epoch-5.safetensors',
      'latest.safetensors',
    ]);
    const fresh = new Weights(new Float32Array(3));
    const run = await unwrap(
      loadCheckpoint(stateIn(), undefined, { autoResume: true, parts: { model: fresh } }),
    );
    expect(run.path).toBe(join(S.checkpointDir(s), 'latest.safetensors'));
    expect(run.state.progress).toEqual({
      ...s.progress,
      epochBegin: 5,
      stepBegin: 30,
      iterBegin: 30,
    });
    expect(S.results(run.state)).toEqual(S.results(s));
    expect(S.bestIndex(run.state)).toBe(3);
    expect(run.state.rng).toEqual(s.rng);
    expect(Array.from(fresh.w)).toEqual([7, 8, 9]);
    const best = await unwrap(fromCheckpoint(join(S.checkpointDir(s), 'best.safetensors')));
    expect(S.latestResult(best)?.index).toBe(3);
  });

  it('autoResume falls back past a corrupt latest, naming it, and adopts the earlier run dir', async () => {
    let s = stateIn({}, 'T1');
    s = epochs(s, 0, 2);
    await unwrap(saveCheckpoint(s));
    s = epochs(s, 2, 4);
    await unwrap(saveCheckpoint(s));
    const latest = join(S.checkpointDir(s), 'latest.safetensors');
    await truncate(latest, 100);
    const later = stateIn({}, 'T2'); // a new start of the same run, at another time
    const run = await unwrap(loadCheckpoint(later, undefined, { autoResume: true }));
    expect(run.state.timestamp).toBe('T1');
    // best and epoch-3 are hard links of that latest (same save), so they are damaged too: the
    // newest valid checkpoint is epoch-1 from the first save.
    expect(run.state.progress.epoch).toBe(1);
    expect(run.path).toBe(join(S.checkpointDir(s), 'epoch-1.safetensors'));
    expect(run.warnings.map((w) => w.message).join('\n')).toContain(latest);
    expect(run.warnings.map((w) => w._tag)).toContain('CheckpointSkipped');
  });

  it('says what to set when there is nothing to load, and names a missing file', async () => {
    const none = await loadCheckpoint(stateIn());
    expect(E.isLeft(none) && none.left.message).toMatch(
      /^no checkpoint to load: set config.checkpoint to a checkpoint file, or config.autoResume to true/,
    );
    const missing = await loadCheckpoint(stateIn({ checkpoint: join(root, 'nope.safetensors') }));
    expect(E.isLeft(missing) && missing.left.message).toBe(
      `checkpoint is set to ${JSON.stringify(join(root, 'nope.safetensors'))} but it does not exist; fix config.checkpoint or set autoResume instead`,
    );
    const fresh = await unwrap(loadCheckpoint(stateIn(), undefined, { autoResume: true }));
    expect(fresh.path).toBeNull();
    expect(fresh.warnings[0]?._tag).toBe('NoCheckpointFound');
    expect(fresh.warnings[0]?.message).toMatch(/no valid checkpoint/);
  });

  it('a model of the wrong shape is refused before anything is loaded', async () => {
    const s = epochs(stateIn(), 0, 1);
    await unwrap(saveCheckpoint(s, { model: new Weights(new Float32Array(3)) }));
    const wrong = new Weights(new Float32Array(4));
    const r = await loadCheckpoint(stateIn(), join(S.checkpointDir(s), 'latest.safetensors'), {
      parts: { model: wrong },
    });
    expect(E.isLeft(r) && r.left.message).toContain('model/w');
    expect(wrong.w).toEqual(new Float32Array(4));
  });

  it('writes nothing on a non-main rank and returns the paths', async () => {
    const s = createState(
      { projectRoot: root, epochEnd: 3 },
      { rank: 1, worldSize: 2, timestamp: 'T' },
    );
    const saved = await unwrap(saveCheckpoint(s));
    expect(saved.written).toBe(false);
    expect(saved.paths[0]).toBe(join(S.checkpointDir(s), 'latest.safetensors'));
    expect(existsSync(S.dir(s))).toBe(false);
    expect(await unwrap(saveResult(s))).toEqual([
      join(S.dir(s), 'results.json'),
      join(S.dir(s), 'latest.json'),
    ]);
    // The spec's generic file members are gated at the same level.
    expect(await unwrap(yaml(s, join(S.dir(s), 'config.yaml')))).toBe(
      join(S.dir(s), 'config.yaml'),
    );
    expect(await unwrap(save(s, { a: 1 }, join(S.dir(s), 'a.json')))).toBe(
      join(S.dir(s), 'a.json'),
    );
    expect(existsSync(S.dir(s))).toBe(false);
    // allProcesses writes on any rank.
    await unwrap(json(s, join(S.dir(s), 'config.json'), { allProcesses: true }));
    expect(existsSync(join(S.dir(s), 'config.json'))).toBe(true);
  });
});

describe('loadPretrained', () => {
  it('loads only the model weights', async () => {
    const s = epochs(stateIn(), 0, 1);
    await unwrap(saveCheckpoint(s, { model: new Weights(new Float32Array([4, 5])) }));
    const target = new Weights(new Float32Array(2));
    await unwrap(loadPretrained(stateIn(), target, join(S.checkpointDir(s), 'latest.safetensors')));
    expect(Array.from(target.w)).toEqual([4, 5]);
  });

  it('names the file when it has no model, and says what to set when no path is given', async () => {
    const s = epochs(stateIn(), 0, 1);
    await unwrap(saveCheckpoint(s));
    const path = join(S.checkpointDir(s), 'latest.safetensors');
    const r = await loadPretrained(s, new Weights(new Float32Array(1)), path);
    expect(E.isLeft(r) && r.left.message).toBe(
      `${path}: no model weights in this checkpoint (its parts: none)`,
    );
    const none = await loadPretrained(s, new Weights(new Float32Array(1)));
    expect(E.isLeft(none) && none.left.message).toBe(
      'pretrained is not specified: set config.pretrained to a checkpoint file',
    );
  });
});

describe('saveResult', () => {
  it('writes results.json, latest.json and best.json as the spec', async () => {
    let s = epochs(stateIn(), 0, 4);
    await unwrap(saveResult(s));
    const read = async (f: string) =>
      JSON.parse(await readFile(join(S.dir(s), f), 'utf8')) as Record<string, unknown>;
    const results = await read('results.json');
    expect(results['name']).toBe('e-r');
    expect(Object.keys(results['results'] as object)).toEqual(['0', '1', '2', '3']);
    expect(await read('latest.json')).toMatchObject({ name: 'e-r', index: 3, val: { loss: 0.5 } });
    expect(await read('best.json')).toEqual({
      ...(await read('latest.json')),
      checkpoint: 'checkpoints/best.safetensors',
    });
    s = epochs(s, 4, 5);
    await unwrap(saveResult(s));
    expect((await read('best.json'))['index']).toBe(3);
    expect((await read('latest.json'))['index']).toBe(4);
  });
});

describe('config files', () => {
  it('json / fromJson and yaml / fromYaml round trip the config', async () => {
    const s = stateIn({ optim: { lr: 0.1 } });
    await unwrap(json(s, join(root, 'c.json')));
    await unwrap(yaml(s, join(root, 'c.yaml')));
    expect((await unwrap(fromJson(join(root, 'c.json')))).config).toEqual(s.config);
    expect((await unwrap(fromYaml(join(root, 'c.yaml')))).config).toEqual(s.config);
  });

  it('names the file and the problem', async () => {
    await writeFile(join(root, 'bad.yaml'), 'accumSteps: 0\nseed: x\n');
    const r = await fromYaml(join(root, 'bad.yaml'));
    expect(E.isLeft(r) && r.left.message).toBe(
      `${join(root, 'bad.yaml')}: \nseed: expected a non-negative integer, got "x"\naccumSteps: expected a positive integer, got 0`,
    );
    const m = await fromJson(join(root, 'missing.json'));
    expect(E.isLeft(m) && m.left.message).toBe(
      `${join(root, 'missing.json')}: no such file; check the path`,
    );
  });
});

describe('history.jsonl and replayLog', () => {
  const log: Action[] = [];
  for (let e = 0; e < 8; e++) {
    log.push(actions.startEpoch(e));
    for (let i = 0; i < 5; i++)
      log.push(actions.stepProgress(), actions.updateMeters({ loss: 1 / (e + i + 1) }));
    log.push(actions.appendResult({ val: { loss: Math.abs(e - 4) } }));
  }

  const write = async (path: string, s0: RunnerState, xs: readonly Action[], every: number) => {
    const { writer } = await unwrap(openHistory(path, s0, { snapshotEvery: every }));
    let s = s0;
    for (const a of xs) {
      s = reduce(s, a);
      writer.append(a, s);
    }
    await unwrap(writer.close());
    return s;
  };

  it('rebuilds the end, any action and any epoch, replaying at most the snapshot distance', async () => {
    const s0 = stateIn();
    const path = join(root, 'history.jsonl');
    const end = await write(path, s0, log, 10);
    const atEnd = await unwrap(replayLog(path));
    expect(atEnd.state).toEqual(end);
    expect(atEnd.replayed).toBeLessThan(10);
    for (const k of [0, 1, 9, 10, 11, 37, log.length]) {
      const r = await unwrap(replayLog(path, { action: k }));
      expect(r.state).toEqual(replay(s0, log.slice(0, k)));
      expect(r.replayed).toBeLessThan(10);
    }
    const e3 = await unwrap(replayLog(path, { epoch: 3 }));
    expect(S.epoch(e3.state)).toBe(3);
    expect(S.latestResult(e3.state)?.index).toBe(3);
    expect(e3.state).toEqual(
      replay(s0, log.slice(0, log.indexOf(actions.startEpoch(4)) === -1 ? 4 * 12 : 4 * 12)),
    );
  });

  it('skips a torn last line with a warning naming the file and line', async () => {
    const path = join(root, 'history.jsonl');
    await write(path, stateIn(), log.slice(0, 12), 1000);
    await writeFile(path, (await readFile(path, 'utf8')) + '{"action":{"type":"stepPr', 'utf8');
    const r = await unwrap(replayLog(path));
    expect(r.state).toEqual(replay(stateIn(), log.slice(0, 12)));
    expect(r.warnings.map((w) => w.message).join()).toContain(`${path}:15`);
  });

  it('continues after a restart from the resumed state', async () => {
    const path = join(root, 'history.jsonl');
    const s0 = stateIn();
    const mid = await write(path, s0, log.slice(0, 20), 7);
    const end = await write(path, mid, log.slice(20), 7);
    expect((await unwrap(replayLog(path))).state).toEqual(end);
    expect((await unwrap(replayLog(path, { action: 15 }))).state).toEqual(
      replay(s0, log.slice(0, 15)),
    );
  });
});

describe('save / load / stateDict / dict', () => {
  it('saves JSON or YAML by extension and loads it back; errors name the file', async () => {
    const s = stateIn();
    for (const f of ['x.json', 'x.yaml']) {
      await unwrap(save(s, { a: [1, 2], b: { c: 'd' } }, join(root, f)));
      expect(await unwrap(load(join(root, f)))).toEqual({ a: [1, 2], b: { c: 'd' } });
    }
    expect(await readFile(join(root, 'x.yaml'), 'utf8')).toBe('a:\n  - 1\n  - 2\nb:\n  c: d\n');
    await writeFile(join(root, 'bad.json'), '{"a":');
    const bad = await load(join(root, 'bad.json'));
    expect(
      E.isLeft(bad) && bad.left.message.startsWith(`${join(root, 'bad.json')}: line 1, column 6`),
    ).toBe(true);
  });

  it('stateDict is the persisted state (plain result array, nothing derived) and dict the config', () => {
    const s = epochs(stateIn(), 0, 2);
    const dict = JSON.parse(JSON.stringify(S.stateDict(s))) as Record<string, unknown>;
    expect(dict['results']).toEqual(
      S.results(s).map((r) => ({ index: r.index, result: r.result })),
    );
    expect(dict).not.toHaveProperty('best');
    expect(decodeState(dict)).toEqual(E.right(s));
    expect(S.dict(s)).toBe(s.config);
    expect(S.checkpointDirName(s)).toBe('checkpoints');
  });
});
