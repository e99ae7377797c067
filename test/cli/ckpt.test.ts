/** `danling ckpt` on a real demo checkpoint, intact and damaged. */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixtures, type Fixtures } from './fixtures.js';

let f: Fixtures;
beforeAll(async () => {
  f = await fixtures();
}, 120_000);

describe('danling ckpt', () => {
  it('verifies a checkpoint and lists its tensors and state', async () => {
    const file = join(f.b, 'checkpoints', 'latest.safetensors');
    const r = await cli(['ckpt', file]);
    expect(r.code, r.err).toBe(0);
    const size = (await readFile(file)).length;
    expect(r.out).toContain(`${file}: ok (${size} bytes, schema 1, checksum verified)\n`);
    // run b has one hidden layer of 8 units: 4x8 + 8 + 8x3 + 3 float32s, and Adam's m and v.
    expect(r.out).toMatch(/\n {2}model\/hidden0\/kernel +F32 +\[4,8\] +128\n/);
    expect(r.out).toMatch(/\n {2}model\/out\/bias +F32 +\[3\] +12\n/);
    expect(r.out).toMatch(/\n {2}optimizer\/hidden0\/kernel\/m +F32 +\[4,8\] +128\n/);
    expect(r.out).toContain('state:\n  timestamp: ');
    expect(r.out).toContain('  name: iris-b\n');
    expect(r.out).toMatch(/ {4}epoch: 2\n {4}step: 24\n/);
    const json = JSON.parse((await cli(['ckpt', file, '--json'])).out) as {
      ok: boolean;
      tensors: { name: string; dtype: string; shape: number[]; bytes: number }[];
    };
    expect(json.ok).toBe(true);
    expect(json.tensors).toContainEqual({
      name: 'model/hidden0/kernel',
      dtype: 'F32',
      shape: [4, 8],
      bytes: 128,
    });
  });

  it('exits 1 naming the problem for a damaged or truncated file, 2 without a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'danling-ckpt-'));
    const bytes = await readFile(join(f.a, 'checkpoints', 'latest.safetensors'));
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    await writeFile(join(dir, 'flipped.safetensors'), flipped);
    await writeFile(join(dir, 'cut.safetensors'), bytes.subarray(0, bytes.length - 100));
    const a = await cli(['ckpt', join(dir, 'flipped.safetensors')]);
    expect(a.code).toBe(1);
    expect(a.out).toBe('');
    expect(a.err).toMatch(/^danling ckpt: checkpoint .*flipped\.safetensors.*checksum/);
    const b = await cli(['ckpt', join(dir, 'cut.safetensors')]);
    expect(b.code).toBe(1);
    expect(b.err).toContain('cut.safetensors');
    const c = await cli(['ckpt', join(dir, 'missing.safetensors')]);
    expect(c.err).toBe(
      `danling ckpt: checkpoint ${join(dir, 'missing.safetensors')} does not exist\n`,
    );
    expect((await cli(['ckpt'])).code).toBe(2);
  });
});
