/**
 * The safetensors layout, pure: an 8-byte little-endian header length N, N bytes of JSON header
 * (`{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`,
 * padded with spaces to a multiple of 8), then the tensors' little-endian bytes, contiguous, with
 * offsets relative to the end of the header. Files written here open in Python's `safetensors`.
 */
import * as E from 'fp-ts/lib/Either.js';

/** Element types of the safetensors format. F16/BF16 data is kept as raw 16-bit words. */
export type Dtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** The typed arrays that hold tensor data. */
export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/** A tensor: its element type, its shape and its elements in row-major order. */
export interface Tensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** Named tensors. */
export type TensorMap = Readonly<Record<string, Tensor>>;

/** A decoded safetensors file. */
export interface SafetensorsFile {
  readonly tensors: TensorMap;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8,
  I64: 8,
  U64: 8,
  F32: 4,
  I32: 4,
  U32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

const ARRAY_OF: Readonly<
  Record<
    Dtype,
    { new (buffer: ArrayBuffer, byteOffset: number, length: number): TensorData; name: string }
  >
> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** Whether `value` is one of the dtypes this codec knows. */
export const isDtype = (value: unknown): value is Dtype =>
  typeof value === 'string' && Object.hasOwn(DTYPE_SIZE, value);

/** What is wrong with a safetensors buffer or with tensors to encode. */
export type SafetensorsProblem =
  | 'too-short'
  | 'header-length'
  | 'header-json'
  | 'header-shape'
  | 'metadata'
  | 'dtype'
  | 'shape'
  | 'offsets'
  | 'byte-count'
  | 'data';

/** A buffer that is not valid safetensors, or tensors that cannot be encoded. */
export interface SafetensorsError {
  readonly _tag: 'SafetensorsInvalid';
  readonly problem: SafetensorsProblem;
  /** The tensor concerned, when there is one. */
  readonly tensor?: string;
  readonly message: string;
}

const invalid = (
  problem: SafetensorsProblem,
  message: string,
  tensor?: string,
): SafetensorsError =>
  tensor === undefined
    ? { _tag: 'SafetensorsInvalid', problem, message }
    : { _tag: 'SafetensorsInvalid', problem, tensor, message };

/** The largest header accepted on decode (the Python reader's limit is 100 MB as well). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const isShape = (shape: unknown): shape is number[] =>
  Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);

const bytesOf = (data: TensorData): Uint8Array =>
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

/** Reverses the byte order of every `size`-byte word (only used on big-endian hosts). */
const swapped = (bytes: Uint8Array, size: number): Uint8Array => {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size)
    for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j] ?? 0;
  return out;
};

/** Encoded safetensors as a list of buffers (header first, then each tensor's bytes, unchanged). */
export interface EncodedSafetensors {
  /** The 8-byte length followed by the padded JSON header. */
  readonly header: Uint8Array;
  /** The tensors' bytes in file order; views of the caller's arrays (no copy) on little-endian hosts. */
  readonly chunks: readonly Uint8Array[];
  readonly byteLength: number;
}

const checkTensor = (name: string, t: Tensor): SafetensorsError | undefined => {
  if (!isDtype(t.dtype)) return invalid('dtype', `${name}: unknown dtype ${String(t.dtype)}`, name);
  if (!isShape(t.shape))
    return invalid(
      'shape',
      `${name}: shape must be non-negative integers, got ${JSON.stringify(t.shape)}`,
      name,
    );
  const want = elementCount(t.shape) * DTYPE_SIZE[t.dtype];
  if (t.data.byteLength !== want)
    return invalid(
      'byte-count',
      `${name}: shape [${t.shape.join(',')}] of ${t.dtype} needs ${want} bytes, got ${t.data.byteLength}`,
      name,
    );
  if (t.data.BYTES_PER_ELEMENT !== DTYPE_SIZE[t.dtype])
    return invalid(
      'data',
      `${name}: dtype ${t.dtype} needs ${DTYPE_SIZE[t.dtype]}-byte elements, got a ${t.data.constructor.name}`,
      name,
    );
  return undefined;
};

/**
 * Encodes tensors (and string metadata) in the safetensors layout without copying tensor data.
 * Tensors are laid out by element size, largest first, then by name (the order Python's writer
 * uses), so that every tensor starts at an offset aligned to its element size.
 */
export const encodeSafetensorsParts = (
  tensors: TensorMap,
  metadata?: Readonly<Record<string, string>>,
): E.Either<SafetensorsError, EncodedSafetensors> => {
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === '__metadata__')
      return E.left(invalid('header-shape', 'a tensor may not be named __metadata__', name));
    const problem = checkTensor(name, tensors[name] as Tensor);
    if (problem !== undefined) return E.left(problem);
  }
  names.sort((a, b) => {
    const d = DTYPE_SIZE[(tensors[b] as Tensor).dtype] - DTYPE_SIZE[(tensors[a] as Tensor).dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string')
        return E.left(invalid('metadata', `__metadata__.${k}: expected a string, got ${typeof v}`));
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name] as Tensor;
    const bytes = bytesOf(t.data);
    setOwn(header, name, {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + bytes.byteLength],
    });
    const size = DTYPE_SIZE[t.dtype];
    chunks.push(LITTLE_ENDIAN || size === 1 ? bytes : swapped(bytes, size));
    offset += bytes.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return E.right({ header: head, chunks, byteLength: head.byteLength + offset });
};

/** Encodes tensors and metadata into one safetensors buffer (copies; see {@link encodeSafetensorsParts}). */
export const encodeSafetensors = (
  tensors: TensorMap,
  metadata?: Readonly<Record<string, string>>,
): E.Either<SafetensorsError, Uint8Array> =>
  E.map((parts: EncodedSafetensors) => {
    const out = new Uint8Array(parts.byteLength);
    out.set(parts.header, 0);
    let at = parts.header.byteLength;
    for (const chunk of parts.chunks) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    return out;
  })(encodeSafetensorsParts(tensors, metadata));

/** The header of a safetensors buffer, read without touching tensor data. */
export interface SafetensorsHeader {
  /** N, the JSON header's length in bytes. */
  readonly headerLength: number;
  /** The header's JSON text, padding included. */
  readonly json: string;
  /** The parsed header. */
  readonly value: Readonly<Record<string, unknown>>;
}

/**
 * Reads and parses the header of a safetensors buffer (the 8-byte length and the JSON). Checks only
 * that the length fits and the JSON is an object; {@link decodeSafetensors} checks the rest.
 */
export const readSafetensorsHeader = (
  bytes: Uint8Array,
): E.Either<SafetensorsError, SafetensorsHeader> => {
  if (bytes.byteLength < 8)
    return E.left(
      invalid(
        'too-short',
        `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`,
      ),
    );
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8)))
    return E.left(
      invalid(
        'header-length',
        `header length ${n} is out of range: the file has ${bytes.byteLength - 8} bytes after the length (limit ${MAX_HEADER_BYTES})`,
      ),
    );
  const headerLength = Number(n);
  const json = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    return E.left(
      invalid(
        'header-json',
        `header is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`,
      ),
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return E.left(invalid('header-shape', 'header must be a JSON object'));
  return E.right({ headerLength, json, value: value as Record<string, unknown> });
};

/** Options of {@link decodeSafetensors}. */
export interface DecodeOptions {
  /**
   * Copy each tensor's bytes into its own buffer (default `false`: tensors are views of `bytes`
   * where the alignment allows, which is the case for files written by this codec or by Python).
   */
  readonly copy?: boolean;
}

const viewOrCopy = (
  bytes: Uint8Array,
  begin: number,
  end: number,
  dtype: Dtype,
  copy: boolean,
): TensorData => {
  const size = DTYPE_SIZE[dtype];
  const Ctor = ARRAY_OF[dtype];
  const at = bytes.byteOffset + begin;
  if (!LITTLE_ENDIAN && size > 1) {
    const own = swapped(bytes.subarray(begin, end), size);
    return new Ctor(own.buffer as ArrayBuffer, 0, (end - begin) / size);
  }
  if (!copy && at % size === 0)
    return new Ctor(bytes.buffer as ArrayBuffer, at, (end - begin) / size);
  const own = bytes.slice(begin, end);
  return new Ctor(own.buffer, 0, (end - begin) / size);
};

/** Where one tensor's bytes are, relative to the end of the header. */
export interface TensorSpan {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

/** The validated layout of a safetensors header: the metadata and the tensors in file order. */
export interface SafetensorsLayout {
  readonly metadata: Readonly<Record<string, string>>;
  readonly spans: readonly TensorSpan[];
}

/**
 * Defines `key` as an own enumerable property (so that a name such as `__proto__` is stored like
 * any other, never setting the prototype).
 */
export const setOwn = <V>(target: Record<string, V>, key: string, value: V): void => {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
};

/**
 * Validates a parsed safetensors header against a data section of `dataLength` bytes, without the
 * data: known dtypes, shapes of non-negative integers, offsets inside the data, contiguous and not
 * overlapping, `end - begin == prod(shape) * size(dtype)`, and a string-to-string `__metadata__`.
 */
export const safetensorsLayout = (
  value: Readonly<Record<string, unknown>>,
  dataLength: number,
): E.Either<SafetensorsError, SafetensorsLayout> => {
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number; dtype: Dtype; shape: number[] }[] = [];
  for (const [name, entry] of Object.entries(value)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        return E.left(invalid('metadata', '__metadata__ must be an object of strings'));
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string')
          return E.left(
            invalid('metadata', `__metadata__.${k}: expected a string, got ${typeof v}`),
          );
        setOwn(metadata, k, v);
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      return E.left(
        invalid('header-shape', `${name}: expected {dtype, shape, data_offsets}`, name),
      );
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (!isDtype(dtype))
      return E.left(invalid('dtype', `${name}: unknown dtype ${JSON.stringify(dtype)}`, name));
    if (!isShape(shape))
      return E.left(
        invalid(
          'shape',
          `${name}: shape must be non-negative integers, got ${JSON.stringify(shape)}`,
          name,
        ),
      );
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    )
      return E.left(
        invalid(
          'offsets',
          `${name}: data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`,
          name,
        ),
      );
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength)
      return E.left(
        invalid(
          'offsets',
          `${name}: data_offsets [${begin}, ${end}] out of bounds: the data is ${dataLength} bytes`,
          name,
        ),
      );
    const want = elementCount(shape) * DTYPE_SIZE[dtype];
    if (end - begin !== want)
      return E.left(
        invalid(
          'byte-count',
          `${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape [${shape.join(',')}] of ${dtype} needs ${want}`,
          name,
        ),
      );
    spans.push({ name, begin, end, dtype, shape });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const s of spans) {
    if (s.begin < cursor)
      return E.left(
        invalid(
          'offsets',
          `${s.name}: data_offsets [${s.begin}, ${s.end}] overlap another tensor`,
          s.name,
        ),
      );
    if (s.begin > cursor)
      return E.left(
        invalid(
          'offsets',
          `${s.name}: data_offsets [${s.begin}, ${s.end}] leave a hole at bytes [${cursor}, ${s.begin})`,
          s.name,
        ),
      );
    cursor = s.end;
  }
  if (cursor !== dataLength)
    return E.left(
      invalid(
        'offsets',
        `the tensors cover ${cursor} bytes but the data is ${dataLength} bytes (truncated or trailing bytes)`,
      ),
    );
  return E.right({ metadata, spans });
};

/**
 * The tensor of `span` over `bytes` (exactly the span's bytes, little-endian as in the file): a
 * view where `bytes` is aligned to the element size, a copy otherwise or on a big-endian host.
 */
export const tensorOfBytes = (span: TensorSpan, bytes: Uint8Array): Tensor => {
  const size = DTYPE_SIZE[span.dtype];
  const own =
    !LITTLE_ENDIAN && size > 1
      ? swapped(bytes, size)
      : bytes.byteOffset % size === 0
        ? bytes
        : bytes.slice();
  const Ctor = ARRAY_OF[span.dtype];
  return {
    dtype: span.dtype,
    shape: span.shape,
    data: new Ctor(own.buffer as ArrayBuffer, own.byteOffset, own.byteLength / size),
  };
};

/**
 * The tensor of `span` over the whole of `buffer` (which must hold `end - begin` bytes in host
 * byte order; see {@link toHostOrder}). Throws a `RangeError` where this runtime cannot make a
 * typed array that long (Node 20: 2^32 elements).
 */
export const tensorOfBuffer = (span: TensorSpan, buffer: ArrayBuffer): Tensor => {
  const size = DTYPE_SIZE[span.dtype];
  return {
    dtype: span.dtype,
    shape: span.shape,
    data: new ARRAY_OF[span.dtype](buffer, 0, buffer.byteLength / size),
  };
};

/**
 * Turns little-endian `size`-byte words read from a file into host order, in place (nothing to do
 * on little-endian hosts). `bytes` must start at a word boundary.
 */
export const toHostOrder = (bytes: Uint8Array, size: number): void => {
  if (LITTLE_ENDIAN || size === 1) return;
  bytes.set(swapped(bytes, size));
};

/**
 * Decodes and validates a safetensors buffer: header length in range, JSON header, known dtypes,
 * shapes of non-negative integers, offsets inside the buffer, contiguous and not overlapping,
 * `end - begin == prod(shape) * size(dtype)`, and a string-to-string `__metadata__`.
 *
 * @example
 * ```ts
 * const file = decodeSafetensors(await fs.readFile('model.safetensors'));
 * if (E.isRight(file)) console.log(file.right.tensors['dense/kernel']?.shape);
 * ```
 */
export const decodeSafetensors = (
  bytes: Uint8Array,
  options: DecodeOptions = {},
): E.Either<SafetensorsError, SafetensorsFile> => {
  const head = readSafetensorsHeader(bytes);
  if (E.isLeft(head)) return head;
  const { headerLength, value } = head.right;
  const dataStart = 8 + headerLength;
  const layout = safetensorsLayout(value, bytes.byteLength - dataStart);
  if (E.isLeft(layout)) return layout;
  const { metadata, spans } = layout.right;
  const tensors: Record<string, Tensor> = {};
  const data = bytes.subarray(dataStart);
  for (const s of spans)
    setOwn(tensors, s.name, {
      dtype: s.dtype,
      shape: s.shape,
      data: viewOrCopy(data, s.begin, s.end, s.dtype, options.copy ?? false),
    });
  return E.right({ tensors, metadata });
};
