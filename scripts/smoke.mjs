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
