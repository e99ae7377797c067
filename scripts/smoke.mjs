// Imports the built package under plain Node ESM (no bundler, no vitest) and checks that every
// export loads and the CLI starts: this is where fp-ts/io-ts directory imports would crash.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const pkg = await import('danling');
const names = Object.keys(pkg);
assert.ok(names.length > 0, 'the package exports nothing');
for (const name of names) assert.notEqual(pkg[name], undefined, `export ${name} is undefined`);

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
console.log(`smoke: ${names.length} exports load under plain node; the CLI starts`);
