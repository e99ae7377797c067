// Imports the built package under plain Node ESM (no bundler, no vitest) and checks that every
// export loads and the CLI starts: this is where fp-ts/io-ts directory imports would crash.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

// Each entry point of package.json's "exports" loads and exports only defined values.
const counts = {};
for (const entry of ['danling', 'danling/effects', 'danling/tfjs']) {
  const pkg = await import(entry);
  const names = Object.keys(pkg);
  assert.ok(names.length > 0, `${entry} exports nothing`);
  for (const name of names)
    assert.notEqual(pkg[name], undefined, `${entry}: export ${name} is undefined`);
  counts[entry] = names.length;
}
// The pure core has no generic spec names at its root (they are in `select` / `io`).
const root = await import('danling');
for (const generic of ['name', 'id', 'dir', 'json', 'yaml', 'save', 'load'])
  assert.equal(root[generic], undefined, `danling exports the generic name ${generic}`);
assert.equal(typeof root.select.epoch, 'function');
assert.equal(typeof (await import('danling/effects')).io.save, 'function');

// A queued checkpoint through the built package: written by the writer thread, which loads
// dist/effects/run/saveWorker.js under plain node (no tsx), and loadable afterwards.
{
  const effects = await import('danling/effects');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const projectRoot = mkdtempSync(join(tmpdir(), 'danling-smoke-'));
  try {
    const started = await effects.createRunner(
      { projectRoot, epochEnd: 1, seed: 0, log: false },
      {
        signals: false,
        env: {},
        progressStream: { write: () => true },
        logger: (await import('pino')).pino({ level: 'silent' }),
      },
    );
    assert.equal(started._tag, 'Right', started.left?.message);
    const runner = started.right;
    runner.dispatch(root.actions.stepProgress(3));
    assert.equal((await runner.queueCheckpoint())._tag, 'Right');
    assert.equal((await runner.settle())._tag, 'Right');
    assert.equal(effects.saveThreadUnavailable(), undefined, 'the writer thread did not start');
    const file = join(root.select.checkpointDir(runner.state), 'latest.safetensors');
    const loaded = await effects.loadCheckpointFile(file);
    assert.equal(loaded._tag, 'Right', loaded.left?.message);
    assert.equal(loaded.right.state.progress.step, 3);
    assert.equal((await runner.close())._tag, 'Right');
  } finally {
    rmSync(projectRoot, { recursive: true, force: true });
  }
}

const cli = new URL('../dist/cli/main.js', import.meta.url);
try {
  execFileSync(process.execPath, [cli.pathname, '--help'], { stdio: 'pipe' });
  const out = execFileSync(process.execPath, [cli.pathname, 'config', 'examples/config.yaml'], {
    stdio: 'pipe',
    encoding: 'utf8',
  });
  assert.match(out, /^name: iris-mlp\nid: \w{16}\nrunId: [0-9a-f-]{36}\n/);
} catch (error) {
  throw new Error(`danling --help failed: ${String(error)}`, { cause: error });
}
console.log(
  `smoke: ${Object.entries(counts)
    .map(([e, n]) => `${e} ${n}`)
    .join(', ')} runtime exports load under plain node; the CLI starts`,
);
