import { CorruptItemError } from '../storage/item.ts';

/** `node:zlib`, loaded with the first value compressed or decompressed, not at import (a cold start's cost). */
const zlib = () => process.getBuiltinModule('node:zlib');

/** Compression algorithms, as named in the item's encoding marker. */
export type CompressionAlgorithm = 'br' | 'gzip';

/** Compression of stored values (`DynamoCacheOptions.compression`). */
export interface CompressionOptions {
  /** `'br'` (brotli, quality 5: smaller than gzip at the same speed) or `'gzip'`. Default `'br'`. */
  algorithm?: CompressionAlgorithm | undefined;
  /**
   * Values of at least this many bytes are compressed, when that makes them smaller. Default `512`: DynamoDB
   * bills writes per started KB, so a value just under 1 KB plus the item's other attributes would cost two.
   */
  thresholdBytes?: number | undefined;
  /**
   * Compress plain strings too. Off by default so that a string stays readable by the original Python
   * service (which reads `cached_value` as S); JSON and binary values are compressed. Default `false`.
   */
  strings?: boolean | undefined;
  /**
   * What compressing a value must save for it to be stored compressed. `'read-units'`: fewer DynamoDB read
   * units for its item (billed per started 4 KB), so every read gains; smaller values stay as they are, and
   * their reads pay no decompression. `'write-units'`: fewer write units (per started KB), which a value
   * of 1-4 KB saves once per write while every DynamoDB read of it pays the decompression: worth it when
   * writes are about as frequent as reads. `'bytes'`: any smaller size. Default `'read-units'` (the
   * trade-off, measured: BENCHMARKS.md "Compression").
   */
  saving?: 'read-units' | 'write-units' | 'bytes' | undefined;
}

/** What a compressed value must save (see `CompressionOptions.saving`). */
export type CompressionSaving = NonNullable<CompressionOptions['saving']>;

/** Defaults of {@link CompressionOptions}. */
export const COMPRESSION_DEFAULTS: Required<CompressionOptions> = { algorithm: 'br', thresholdBytes: 512, strings: false, saving: 'read-units' };

/**
 * Bytes an item holds besides its value and key: attribute names, expiry, freshness, marker. An estimate on
 * the high side, so that a compressed value is kept only when it really saves a unit.
 */
const ITEM_OVERHEAD_BYTES = 128;

/** The size DynamoDB bills a unit for: 4 KB per read unit, 1 KB per write unit. */
const UNIT_BYTES = { 'read-units': 4096, 'write-units': 1024 } as const;

/** Capacity units of an item of `bytes` (one per started unit). */
function units(bytes: number, unitBytes: number): number {
  return Math.max(1, Math.ceil(bytes / unitBytes));
}

/** Whether storing `compressedBytes` instead of `rawBytes` under a key of `keyBytes` is worth it under `saving`. */
export function compressionPays(rawBytes: number, compressedBytes: number, keyBytes: number, saving: CompressionSaving): boolean {
  if (saving === 'bytes') return compressedBytes < rawBytes;
  const overhead = keyBytes + ITEM_OVERHEAD_BYTES;
  return units(compressedBytes + overhead, UNIT_BYTES[saving]) < units(rawBytes + overhead, UNIT_BYTES[saving]);
}

/** Whether a value of `rawBytes` could save a unit at all: an item of one unit or less costs one unit, compressed or not. */
export function mayPay(rawBytes: number, keyBytes: number, saving: CompressionSaving): boolean {
  return saving === 'bytes' || rawBytes + keyBytes + ITEM_OVERHEAD_BYTES > UNIT_BYTES[saving];
}

/** Compresses `data`. */
export function compress(data: Uint8Array, algorithm: CompressionAlgorithm): Uint8Array {
  const { brotliCompressSync, constants, gzipSync } = zlib();
  return algorithm === 'br'
    ? brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength } })
    : gzipSync(data);
}

/** Decompresses `data`; truncated or garbled data is a `CorruptItemError`. */
export function decompress(data: Uint8Array, algorithm: string, maxBytes: number): Uint8Array {
  try {
    // maxOutputLength bounds a decompression bomb to what the cache could have stored.
    if (algorithm === 'br') return zlib().brotliDecompressSync(data, { maxOutputLength: maxBytes });
    if (algorithm === 'gzip') return zlib().gunzipSync(data, { maxOutputLength: maxBytes });
  } catch (error) {
    throw new CorruptItemError(`${algorithm} data cannot be decompressed: ${(error as Error).message}`, { cause: error });
  }
  throw new CorruptItemError(`unknown compression ${JSON.stringify(algorithm)}`);
}
