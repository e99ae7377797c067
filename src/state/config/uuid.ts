/**
 * SHA-1 and UUIDv5 (RFC 9562) in plain TypeScript, so the pure core can derive ids without
 * `node:crypto`.
 */

const utf8 = new TextEncoder();

const rotl = (x: number, n: number): number => (x << n) | (x >>> (32 - n));

/** SHA-1 digest of `bytes` (20 bytes). */
export const sha1 = (bytes: Uint8Array): Uint8Array => {
  const bitLength = bytes.length * 8;
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 2 ** 32));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  let h0 = 0x67452301;
  let h1 = 0xefcdab89;
  let h2 = 0x98badcfe;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0;
  const w = new Uint32Array(80);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 80; i++) {
      w[i] = rotl((w[i - 3] ?? 0) ^ (w[i - 8] ?? 0) ^ (w[i - 14] ?? 0) ^ (w[i - 16] ?? 0), 1);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let i = 0; i < 80; i++) {
      let f: number;
      let k: number;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const temp = (rotl(a, 5) + f + e + k + (w[i] ?? 0)) >>> 0;
      e = d;
      d = c;
      c = rotl(b, 30) >>> 0;
      b = a;
      a = temp;
    }
    h0 = (h0 + a) >>> 0;
    h1 = (h1 + b) >>> 0;
    h2 = (h2 + c) >>> 0;
    h3 = (h3 + d) >>> 0;
    h4 = (h4 + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const outView = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => {
    outView.setUint32(i * 4, h);
  });
  return out;
};

const hex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Formats 16 bytes as a UUID string `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
export const formatUuid = (bytes: Uint8Array): string => {
  const h = hex(bytes.subarray(0, 16));
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

/** Parses a UUID string into 16 bytes; `undefined` if it is not one. */
export const parseUuid = (uuid: string): Uint8Array | undefined => {
  const h = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) return undefined;
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(h.slice(i * 2, i * 2 + 2), 16));
};

/**
 * UUIDv5 of `name` in `namespace` (16 bytes or a UUID string), as Python's `uuid.uuid5`.
 *
 * @example
 * uuid5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')
 * // '886313e1-3b8a-5372-9b90-0c9aee199e5d'
 */
export const uuid5 = (namespace: Uint8Array | string, name: string): string => {
  const ns = typeof namespace === 'string' ? parseUuid(namespace) : namespace;
  if (ns?.length !== 16)
    throw new TypeError(`uuid5: namespace must be a UUID, got ${String(namespace)}`);
  const nameBytes = utf8.encode(name);
  const input = new Uint8Array(16 + nameBytes.length);
  input.set(ns);
  input.set(nameBytes, 16);
  const digest = sha1(input).slice(0, 16);
  digest[6] = ((digest[6] ?? 0) & 0x0f) | 0x50;
  digest[8] = ((digest[8] ?? 0) & 0x3f) | 0x80;
  return formatUuid(digest);
};

/**
 * The experiment's UUID namespace: `experimentId` as ASCII, padded with `x` or cut to 16 bytes
 * (non-ASCII characters become `x`), read as the 16 bytes of a UUID.
 */
export const experimentNamespace = (experimentId: string): Uint8Array => {
  const ascii = Array.from(experimentId, (ch) => (ch.charCodeAt(0) < 128 ? ch : 'x'))
    .join('')
    .padEnd(16, 'x')
    .slice(0, 16);
  return Uint8Array.from(ascii, (ch) => ch.charCodeAt(0));
};
