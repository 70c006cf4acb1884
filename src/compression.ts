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
}

/** Defaults of {@link CompressionOptions}. */
export const COMPRESSION_DEFAULTS: Required<CompressionOptions> = { algorithm: 'br', thresholdBytes: 512, strings: false };

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
