/**
 * Start-up and resume that explain themselves (issue 10 items 5, 6, 8-11; issue 11 items 1, 9,
 * 13), on real files in temp folders and a real git repository.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { pino } from 'pino';
import { createRunner, type RunnerEnv } from '../../../src/effects/shell/runner.js';
import { saveCheckpoint } from '../../../src/effects/run/runFiles.js';
import { saveCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { replayLog } from '../../../src/effects/run/history.js';
import { actions } from '../../../src/reducers/actions.js';
import { appendResult, startEpoch, stepProgress } from '../../../src/reducers/reducers.js';
import {
  createState,
  persistState,
  type RunnerState,
} from '../../../src/state/runner/RunnerState.js';
import * as S from '../../../src/state/runner/selectors.js';
import { Weights } from '../../helpers/weights.js';

let root = '';
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'danling-startup-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A logger whose lines the test can read. */
const captured = () => {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write: (chunk: Buffer, _e, done) => {
        lines.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
        done();
      },
    }),
  );
  return { logger, lines };
};

const silent = new Writable({
  write: (_c, _e, done) => {
    done();
  },
});
const envOf = (extra: Partial<RunnerEnv> = {}): RunnerEnv => ({
  logger: pino({ level: 'silent' }),
  env: {},
  cwd: root,
  progressStream: silent,
  now: () => new Date(2026, 10, 24, 3, 42, 0),
  ...extra,
});

const base = (extra: object = {}) => ({
  projectRoot: join(root, 'exp'),
  experimentName: 'e',
  runName: 'r',
  experimentId: 'fixedexperiment0',
  epochEnd: 10,
  seed: 0,
  scoreSplit: 'val',
  ...extra,
});

const must = async <A>(p: Promise<E.Either<{ message: string }, A>>): Promise<A> => {
  const r = await p;
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

describe('a fresh start in the same second as an earlier one', () => {
  it('gets its own run dir: the earlier run files are not appended to', async () => {
    const first = await must(createRunner(base(), envOf()));
    await must(first.writeResult({ loss: 1 }, 'train', 1));
    await first.close();
    const rows = readFileSync(join(S.dir(first.state), 'metrics.jsonl'), 'utf8');
    const second = await must(createRunner(base(), envOf()));
    await must(second.writeResult({ loss: 2 }, 'train', 1));
    await second.close();
    expect(S.dir(second.state)).toBe(`${S.dir(first.state)}-1`);
    expect(readFileSync(join(S.dir(first.state), 'metrics.jsonl'), 'utf8')).toBe(rows);
  });
});

describe('no end', () => {
  it('fails before any run dir is created, and names the keys', async () => {
    const r = await createRunner({ projectRoot: join(root, 'exp'), seed: 1 }, envOf());
    expect(E.isLeft(r) && r.left._tag).toBe('NoEnd');
    expect(E.isLeft(r) && r.left.message).toMatch(/^epochEnd \/ stepEnd: the config has no end/);
    expect(existsSync(join(root, 'exp'))).toBe(false);
  });
});

describe('warnings', () => {
  it('are values with a tag: the shell logs each with its tag in the warning field', async () => {
    const records: { level: number; msg: string; warning?: string }[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write: (chunk: Buffer, _e, done) => {
          records.push(JSON.parse(chunk.toString()) as (typeof records)[number]);
          done();
        },
      }),
    );
    const r = await createRunner(
      { projectRoot: join(root, 'exp'), seed: 1, epochEnd: 2, autoResume: true, score_name: 'x' },
      envOf({ logger }),
    );
    expect(E.isRight(r)).toBe(true);
    if (E.isRight(r)) await r.right.close();
    const warned = records.filter((x) => x.level === 40);
    expect(warned.map((x) => x.warning)).toEqual(['ConfigKeyUnknown', 'NoCheckpointFound']);
    expect(warned[0]?.msg).toBe('score_name: unknown key kept as given; did you mean scoreName?');
  });
});

describe('pretrained', () => {
  const saveWeights = async (w: number[]): Promise<string> => {
    const s = createState(base({ runName: 'source' }), { timestamp: 'src' });
    const saved = await must(
      saveCheckpoint(s, { model: new Weights(Float32Array.from(w)) }, { fsync: false }),
    );
    return saved.paths[0] ?? '';
  };

  it('loads the model part from config.pretrained at start-up', async () => {
    const file = await saveWeights([7, 8, 9]);
    const model = new Weights(new Float32Array(3));
    const runner = await must(
      createRunner(base({ pretrained: file }), envOf({ parts: { model } })),
    );
    expect([...model.w]).toEqual([7, 8, 9]);
    await runner.close();
  });

  it('a missing or unfitting file is a start-up error naming the file and the tensors', async () => {
    const missing = join(root, 'nope.safetensors');
    const a = await createRunner(
      base({ pretrained: missing }),
      envOf({ parts: { model: new Weights(new Float32Array(3)) } }),
    );
    expect(E.isLeft(a) && a.left.message).toContain(missing);
    const file = await saveWeights([1, 2, 3, 4]);
    const b = await createRunner(
      base({ pretrained: file }),
      envOf({ parts: { model: new Weights(new Float32Array(3)) } }),
    );
    expect(E.isLeft(b) && b.left.message).toContain(file);
    expect(E.isLeft(b) && b.left.message).toContain('model/w: expected shape [3], got [4]');
  });
});

describe('a run dir that holds another run', () => {
  it('is refused, naming both runs and the fix; the first run files stay; the lock is released', async () => {
    const shared = join(root, 'shared');
    const first = await must(createRunner(base({ dir: shared, runName: 'a' }), envOf()));
    first.dispatch(actions.appendResult({ val: { loss: 1 } }));
    await must(first.saveResult());
    await first.close();
    const before = readFileSync(join(shared, 'config.yaml'), 'utf8');
    const second = await createRunner(base({ dir: shared, runName: 'b' }), envOf());
    expect(E.isLeft(second) && second.left._tag).toBe('RunDirTaken');
    const message = E.isLeft(second) ? second.left.message : '';
    expect(message).toContain(first.state.config.runId);
    expect(message).toContain('Choose another dir (--dir)');
    expect(readFileSync(join(shared, 'config.yaml'), 'utf8')).toBe(before);
    // The failed start released its lock: the first run can start again in this process.
    expect(existsSync(join(shared, '.lock'))).toBe(false);
    const again = await must(createRunner(base({ dir: shared, runName: 'a' }), envOf()));
    await again.close();
  });
});

describe('the code a run ran with', () => {
  it('records the commit as experimentId and the uncommitted diff in git.diff', async () => {
    const repo = join(root, 'repo');
    await mkdir(repo);
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
        cwd: repo,
        encoding: 'utf8',
      });
    git('init', '-q');
    await writeFile(join(repo, 'train.ts'), 'const lr = 0.1;\n');
    git('add', '.');
    git('commit', '-qm', 'first');
    await writeFile(join(repo, 'train.ts'), 'const lr = 0.5;\n');
    const commit = git('rev-parse', 'HEAD').trim();
    const { logger, lines } = captured();
    const config = { ...base(), experimentId: undefined };
    const runner = await must(createRunner(config, envOf({ cwd: repo, logger })));
    expect(runner.state.config.experimentId).toBe(commit);
    expect(readFileSync(join(S.dir(runner.state), 'git.diff'), 'utf8')).toContain(
      '+const lr = 0.5;',
    );
    expect(lines).toContain(`code: commit ${commit} with uncommitted changes (git.diff)`);
    await runner.close();
  });
});

/** Runs `n` epochs of a fake run through the runner, checkpointing each. */
const train = async (config: object, env: RunnerEnv, from: number, to: number, model: Weights) => {
  const runner = await must(createRunner(config, env));
  for (let e = from; e < to; e++) {
    runner.dispatch(actions.startEpoch(e));
    runner.dispatch(actions.stepProgress(5));
    model.w = model.w.map((x) => x + 1);
    runner.dispatch(actions.appendResult({ train: { loss: 1 }, val: { loss: 10 - e } }, e));
    await must(runner.saveCheckpoint());
    await must(runner.saveResult());
  }
  return runner;
};

describe('resume', () => {
  it('repairs the links and result files a kill between latest and its aliases left behind', async () => {
    const model = new Weights(new Float32Array(2));
    const config = base({ saveInterval: 5 });
    const runner = await train(config, envOf({ parts: { model } }), 0, 4, model);
    // Epoch 4 (best, and due for epoch-4): the kill came right after latest was committed.
    let s: RunnerState = runner.state;
    s = appendResult(
      stepProgress(startEpoch(s, 4), 5),
      { train: { loss: 1 }, val: { loss: 1 } },
      4,
    );
    const dict = { model: new Weights(Float32Array.from([5, 5])).stateDict() };
    await must(
      saveCheckpointFile(join(S.checkpointDir(s), 'latest.safetensors'), {
        state: persistState(s) as never,
        parts: dict,
      }),
    );
    await runner.close();
    const folder = S.checkpointDir(s);
    expect(existsSync(join(folder, 'epoch-4.safetensors'))).toBe(false);
    const { logger, lines } = captured();
    const resumed = await must(
      createRunner({ ...config, autoResume: true }, envOf({ parts: { model }, logger })),
    );
    const ino = (n: string) => statSync(join(folder, `${n}.safetensors`)).ino;
    expect(ino('best')).toBe(ino('latest'));
    expect(ino('epoch-4')).toBe(ino('latest'));
    const json = (f: string) =>
      JSON.parse(readFileSync(join(S.dir(s), f), 'utf8')) as Record<string, unknown>;
    expect(json('best.json')['epoch']).toBe(4);
    expect(json('latest.json')['epoch']).toBe(4);
    expect(Object.keys(json('results.json')['results'] as object)).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
    ]);
    expect(lines.some((l) => l.startsWith('repaired checkpoint links'))).toBe(true);
    expect(lines).toContain(
      `run resumed from ${join(folder, 'latest.safetensors')} at epoch 4, step 25`,
    );
    await resumed.close();
  });

  it('removes temporary files of dead writers in the run dir too', async () => {
    const model = new Weights(new Float32Array(2));
    const runner = await train(base(), envOf({ parts: { model } }), 0, 1, model);
    const leftover = join(S.dir(runner.state), '.results.json.tmp-4194001-deadbeef');
    await runner.close();
    await writeFile(leftover, '{');
    const resumed = await must(
      createRunner(base({ autoResume: true }), envOf({ parts: { model } })),
    );
    expect(existsSync(leftover)).toBe(false);
    await resumed.close();
  });

  it('with parts given as a function, falls back past a checkpoint that does not fit, as with an object', async () => {
    const small = new Weights(new Float32Array(2));
    const first = await train(
      base({ saveInterval: 1 }),
      envOf({ parts: { model: small } }),
      0,
      2,
      small,
    );
    await first.close();
    // A later start wrote a checkpoint of a wider model into the same run.
    const wide = new Weights(new Float32Array(3));
    const second = await train(
      base({ autoResume: true }),
      envOf({ parts: { model: wide } }),
      2,
      3,
      wide,
    );
    await second.close();
    for (const parts of [
      { model: new Weights(new Float32Array(2)) },
      () => ({ model: new Weights(new Float32Array(2)) }),
    ]) {
      const r = await must(
        createRunner(base({ saveInterval: 1, autoResume: true }), envOf({ parts })),
      );
      expect(r.state.progress.epoch).toBe(1);
      expect((r.parts['model'] as Weights).w.length).toBe(2);
      await r.close();
    }
  });

  it('a finished run resumed says it is complete and how to train further', async () => {
    const model = new Weights(new Float32Array(2));
    const runner = await train(base({ epochEnd: 2 }), envOf({ parts: { model } }), 0, 2, model);
    await runner.close();
    const { logger, lines } = captured();
    const r = await must(
      createRunner(base({ epochEnd: 2, autoResume: true }), envOf({ parts: { model }, logger })),
    );
    expect(
      lines.some(
        (l) =>
          l.startsWith('the run is complete (epochEnd 2); to train further') &&
          l.includes('--checkpoint'),
      ),
    ).toBe(true);
    await r.close();
  });
});

describe('Runner.loadCheckpoint', () => {
  it('restores once, as logged actions: a replay of the log reaches the same state', async () => {
    const model = new Weights(new Float32Array(2));
    const source = await train(base({ runName: 'src' }), envOf({ parts: { model } }), 0, 3, model);
    const file = join(S.checkpointDir(source.state), 'latest.safetensors');
    await source.close();
    const target = new Weights(new Float32Array(2));
    const runner = await must(
      createRunner(base({ runName: 'dst' }), envOf({ parts: { model: target } })),
    );
    const state = await must(runner.loadCheckpoint(file));
    expect(state.progress).toMatchObject({ epoch: 2, step: 15, epochBegin: 2, stepBegin: 15 });
    expect(S.results(state)).toEqual(S.results(source.state));
    expect([...target.w]).toEqual([...model.w]);
    await runner.close();
    const replayed = await must(replayLog(join(S.dir(runner.state), 'history.jsonl')));
    expect(replayed.state).toEqual(runner.state);
    const kinds = readFileSync(join(S.dir(runner.state), 'history.jsonl'), 'utf8').match(
      /"type":"restore"/g,
    );
    expect(kinds?.length).toBe(1);
  });

  it('refuses to adopt another start of the run mid-run, saying what to do', async () => {
    const model = new Weights(new Float32Array(2));
    const first = await train(base(), envOf({ parts: { model } }), 0, 1, model);
    await first.close();
    const later = await must(
      createRunner(base(), envOf({ parts: { model }, now: () => new Date(2026, 10, 25, 1, 0, 0) })),
    );
    const r = await later.loadCheckpoint(undefined, { autoResume: true });
    expect(E.isLeft(r) && r.left.message).toContain('Start a new runner with autoResume');
    await later.close();
    expect((await readdir(join(root, 'exp'))).length).toBe(1);
  });
});

describe('where a run lives is not what it is', () => {
  it('moving the experiments folder keeps the runId, and autoResume finds the run there', async () => {
    const model = new Weights(new Float32Array(2));
    const first = await train(base(), envOf({ parts: { model } }), 0, 2, model);
    await first.close();
    const { rename } = await import('node:fs/promises');
    await rename(join(root, 'exp'), join(root, 'moved'));
    const moved = { ...base(), projectRoot: join(root, 'moved'), autoResume: true };
    const r = await must(createRunner(moved, envOf({ parts: { model } })));
    expect(r.state.config.runId).toBe(first.state.config.runId);
    expect(r.resumedFrom).not.toBeNull();
    expect(r.state.progress.epoch).toBe(1);
    await r.close();
  });
});

describe('autoResume explains itself', () => {
  it('the same config started at another commit is this run: resumed, naming both commits', async () => {
    const model = new Weights(new Float32Array(2));
    const first = await train(
      base({ experimentId: 'aaaaaaaa11111111' }),
      envOf({ parts: { model } }),
      0,
      2,
      model,
    );
    await first.close();
    const { logger, lines } = captured();
    const r = await must(
      createRunner(
        base({ experimentId: 'bbbbbbbb22222222', autoResume: true }),
        envOf({ parts: { model }, logger, now: () => new Date(2026, 10, 26, 1, 0, 0) }),
      ),
    );
    expect(r.resumedFrom).not.toBeNull();
    expect(r.state.progress.epoch).toBe(1);
    expect(S.dir(r.state)).toBe(S.dir(first.state));
    expect(
      lines.some((l) =>
        l.includes(
          'the same config started at commit aaaaaaaa11111111; this is commit bbbbbbbb22222222',
        ),
      ),
    ).toBe(true);
    await r.close();
  });

  it('a changed config starts fresh, saying which earlier run is closest, how it differs and how to continue it', async () => {
    const model = new Weights(new Float32Array(2));
    const first = await train(
      base({ optim: { lr: 0.01 } }),
      envOf({ parts: { model } }),
      0,
      2,
      model,
    );
    await first.close();
    const { logger, lines } = captured();
    const r = await must(
      createRunner(
        base({ optim: { lr: 0.05 }, autoResume: true }),
        envOf({ parts: { model }, logger }),
      ),
    );
    expect(r.resumedFrom).toBeNull();
    const line = lines.find((l) => l.startsWith('autoResume: no checkpoint of this run')) ?? '';
    expect(line).toContain(
      `the closest earlier run of e-r is ${S.dir(first.state)} (epoch 1, step 10)`,
    );
    expect(line).toContain('optim.lr: 0.01 -> 0.05');
    expect(line).toContain(
      `--checkpoint ${join(S.checkpointDir(first.state), 'latest.safetensors')}`,
    );
    await r.close();
  });

  it('a resume from --checkpoint with a changed config logs the difference', async () => {
    const model = new Weights(new Float32Array(2));
    const first = await train(
      base({ optim: { lr: 0.01 } }),
      envOf({ parts: { model } }),
      0,
      2,
      model,
    );
    await first.close();
    const file = join(S.checkpointDir(first.state), 'latest.safetensors');
    const { logger, lines } = captured();
    const r = await must(
      createRunner(
        base({ optim: { lr: 0.05 }, checkpoint: file, epochEnd: 12 }),
        envOf({ parts: { model }, logger }),
      ),
    );
    expect(r.resumedFrom).toBe(file);
    const line = lines.find((l) => l.includes('was saved with another config')) ?? '';
    expect(line).toContain('optim.lr: 0.01 -> 0.05');
    expect(line).toContain('epochEnd: 10 -> 12');
    await r.close();
  });
});
