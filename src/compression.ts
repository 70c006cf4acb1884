import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { CorruptItemError } from './persistence/item.ts';

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
   * What a compressed value must save to be stored compressed. `'write-units'`: fewer DynamoDB write units
   * for its item (billed per started KB), so a value whose item costs one unit either way is left as it is,
   * and its readers pay no decompression (measured in BENCHMARKS.md). `'bytes'`: any smaller size.
   * Default `'write-units'`.
   */
  saving?: 'write-units' | 'bytes' | undefined;
}

/** Defaults of {@link CompressionOptions}. */
export const COMPRESSION_DEFAULTS: Required<CompressionOptions> = { algorithm: 'br', thresholdBytes: 512, strings: false, saving: 'write-units' };

/**
 * Bytes an item holds besides its value and key: attribute names, expiry, freshness, marker. An estimate on
 * the high side, so that a compressed value is kept only when it really saves a write unit.
 */
const ITEM_OVERHEAD_BYTES = 128;

/** DynamoDB write units of an item of `bytes` (one per started KB). */
function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 1024));
}

/** Whether storing `compressedBytes` instead of `rawBytes` under a key of `keyBytes` is worth it under `saving`. */
export function compressionPays(rawBytes: number, compressedBytes: number, keyBytes: number, saving: 'write-units' | 'bytes'): boolean {
  if (saving === 'bytes') return compressedBytes < rawBytes;
  const overhead = keyBytes + ITEM_OVERHEAD_BYTES;
  return writeUnits(compressedBytes + overhead) < writeUnits(rawBytes + overhead);
}

/** Whether a value of `rawBytes` could save a write unit at all: an item of one KB or less costs one unit, compressed or not. */
export function mayPay(rawBytes: number, keyBytes: number, saving: 'write-units' | 'bytes'): boolean {
  return saving === 'bytes' || rawBytes + keyBytes + ITEM_OVERHEAD_BYTES > 1024;
}

/** Compresses `data`. */
export function compress(data: Uint8Array, algorithm: CompressionAlgorithm): Uint8Array {
  return algorithm === 'br'
    ? brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength } })
    : gzipSync(data);
}

/** Decompresses `data`; truncated or garbled data is a `CorruptItemError`. */
export function decompress(data: Uint8Array, algorithm: string, maxBytes: number): Uint8Array {
  try {
    // maxOutputLength bounds a decompression bomb to what the cache could have stored.
    if (algorithm === 'br') return brotliDecompressSync(data, { maxOutputLength: maxBytes });
    if (algorithm === 'gzip') return gunzipSync(data, { maxOutputLength: maxBytes });
  } catch (error) {
    throw new CorruptItemError(`${algorithm} data cannot be decompressed: ${(error as Error).message}`, { cause: error });
  }
  throw new CorruptItemError(`unknown compression ${JSON.stringify(algorithm)}`);
}
