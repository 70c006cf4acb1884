import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DynamoCacheOptions } from '../src/options.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();
const encryption = { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' };

/** Every path a string takes to the table and back. */
const PATHS: Array<[string, DynamoCacheOptions, (text: string) => unknown]> = [
  ['plain string', {}, (text) => text],
  ['JSON', {}, (text) => ({ text })],
  // Long and repetitive, so compression does shrink them and is kept.
  ['compressed string', { compression: { strings: true, thresholdBytes: 0 } }, (text) => text + 'abc'.repeat(1000)],
  ['compressed JSON', { compression: { thresholdBytes: 0 } }, (text) => ({ text: text + 'abc'.repeat(1000) })],
  ['encrypted string', { encryption }, (text) => text],
  ['encrypted, compressed JSON', { encryption, compression: { thresholdBytes: 0 } }, (text) => ({ text })],
  ['chunked string (over 390,000 bytes)', { compression: false }, (text) => text + 'x'.repeat(400_000)],
  ['chunked, encrypted string', { encryption }, (text) => text + 'y'.repeat(400_000)],
];

describe('exact round trips: a leading U+FEFF is a character, not a byte order mark', () => {
  it.each(PATHS)('%s: another environment reads back exactly what was written', async (_path, options, shape) => {
    const { cache: writer, tableName } = await db.newCache({ memory: false, ...options });
    const { cache: reader } = await db.newCache({ tableName, memory: false, ...options });
    for (const [i, text] of ['\ufeffhello', '\ufeff', '\ufeff\ufeffdouble', 'a\ufeffinside', ''].entries()) {
      const value = shape(text);
      expect(await writer.set(`k${i}`, value)).toBe(true);
      expect(await reader.get(`k${i}`)).toStrictEqual(value);
    }
    expect(reader.stats().errors).toBe(0);
  });
});
