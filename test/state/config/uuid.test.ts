import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { test } from '@fast-check/vitest';
import fc from 'fast-check';
import { experimentNamespace, sha1, uuid5 } from '../../../src/state/config/uuid.js';

describe('sha1', () => {
  test.prop([fc.uint8Array({ maxLength: 300 })])('equals node:crypto', (bytes) => {
    const ours = Buffer.from(sha1(bytes)).toString('hex');
    expect(ours).toBe(createHash('sha1').update(bytes).digest('hex'));
  });
});

describe('uuid5', () => {
  it.each([
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, name)
    ['python.org', '886313e1-3b8a-5372-9b90-0c9aee199e5d'],
    ['www.example.com', '2ed6657d-e927-568b-95e1-2665a8aea6a2'],
  ])('uuid5(NAMESPACE_DNS, %s) = %s', (name, expected) => {
    expect(uuid5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', name)).toBe(expected);
  });

  it('rejects a namespace that is not a UUID', () => {
    expect(() => uuid5('nope', 'x')).toThrow(/namespace must be a UUID/);
  });

  it('pads and cuts experiment ids to 16 ASCII bytes', () => {
    expect(Buffer.from(experimentNamespace('abc')).toString('latin1')).toBe('abcxxxxxxxxxxxxx');
    expect(Buffer.from(experimentNamespace('0123456789abcdefXYZ')).toString('latin1')).toBe(
      '0123456789abcdef',
    );
    expect(Buffer.from(experimentNamespace('é')).toString('latin1')).toBe('xxxxxxxxxxxxxxxx');
  });
});
