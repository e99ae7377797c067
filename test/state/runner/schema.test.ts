/**
 * The persisted state's schema: schema 2 files hold the results as a plain array; files written
 * by danling 0.1 (schema 1: the in-memory trie with best tracking) still load. The fixtures in
 * test/fixtures/v1/ were written by the Iris demo at commit 5be2d37 (3 epochs).
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import * as E from 'fp-ts/lib/Either.js';
import { loadCheckpointFile } from '../../../src/effects/checkpoint/checkpointFile.js';
import { replayLog } from '../../../src/effects/run/history.js';
import {
  decodeState,
  persistState,
  SCHEMA_VERSION,
} from '../../../src/state/runner/RunnerState.js';
import * as S from '../../../src/state/runner/selectors.js';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../fixtures/v1/${name}`, import.meta.url));

describe('schema 1 files (danling 0.1) still load', () => {
  it('a v1 checkpoint decodes to a state with its results, best and progress', async () => {
    const loaded = await loadCheckpointFile(fixture('latest.safetensors'));
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    expect((loaded.right.state as { schemaVersion: number }).schemaVersion).toBe(1);
    const state = decodeState(loaded.right.state);
    if (E.isLeft(state)) throw new Error(state.left.message);
    const s = state.right;
    expect(s.schemaVersion).toBe(SCHEMA_VERSION);
    expect(S.results(s).map((r) => r.index)).toEqual([0, 1, 2]);
    expect(s.progress.epoch).toBe(2);
    expect(S.bestIndex(s)).not.toBeNull();
    expect(Object.keys(loaded.right.parts).sort()).toEqual(['model', 'optimizer']);
  });

  it('a v1 action log replays to the same state as its checkpoint', async () => {
    const replayed = await replayLog(fixture('history.jsonl'));
    if (E.isLeft(replayed)) throw new Error(replayed.left.message);
    const loaded = await loadCheckpointFile(fixture('latest.safetensors'));
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    const s = decodeState(loaded.right.state);
    if (E.isLeft(s)) throw new Error(s.left.message);
    expect(S.results(replayed.right.state)).toEqual(S.results(s.right));
    expect(replayed.right.state.rng).toEqual(s.right.rng);
  });
});

describe('schema 2: the persisted form', () => {
  it('holds results as [{ index, result }] and no best tracking, and reads back equal', async () => {
    const loaded = await loadCheckpointFile(fixture('latest.safetensors'));
    if (E.isLeft(loaded)) throw new Error(loaded.left.message);
    const s = decodeState(loaded.right.state);
    if (E.isLeft(s)) throw new Error(s.left.message);
    const persisted = JSON.parse(JSON.stringify(persistState(s.right))) as Record<string, unknown>;
    expect(persisted['schemaVersion']).toBe(2);
    expect(persisted).not.toHaveProperty('best');
    expect(persisted['results']).toEqual(
      S.results(s.right).map((r) => ({ index: r.index, result: expect.any(Object) as unknown })),
    );
    expect(decodeState(persisted)).toEqual(E.right(s.right));
  });
});
