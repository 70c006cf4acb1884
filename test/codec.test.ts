import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeValue } from '../src/codec/value-codec.ts';
import { InvalidValueError } from '../src/errors.ts';
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

describe('encodeValue: what JSON would drop or rewrite is refused, by name; everything else is JSON.stringify', () => {
  it('names the property at fault, however deep', () => {
    expect(() => encodeValue({ user: { when: new Date(0) } })).toThrow(/property "when": a Date does not round-trip/);
    expect(() => encodeValue({ list: [1, Number.NaN] })).toThrow(/property "1": NaN is not a finite number/);
    expect(() => encodeValue([{ a: undefined }])).toThrow(/property "a": undefined values cannot be stored/);
    expect(() => encodeValue(Number.POSITIVE_INFINITY)).toThrow(/Cannot cache value: Infinity/);
  });

  it('refuses arrays JSON would rewrite: a subclass, one with a toJSON (even non-enumerable), one with symbol-keyed properties', () => {
    class Path extends Array<string> {}
    const withToJson = [1, 2];
    Object.defineProperty(withToJson, 'toJSON', { value: () => 'j', enumerable: false });
    const withSymbol = Object.assign([1], { [Symbol('tag')]: 'x' });
    expect(() => encodeValue({ path: Path.from(['a']) })).toThrow(/property "path": a Path does not round-trip/);
    expect(() => encodeValue(withToJson)).toThrow(/value: a Array does not round-trip/);
    expect(() => encodeValue([withSymbol])).toThrow(/property "0": symbol-keyed properties cannot be stored/);
  });

  it('refuses cycles, through objects and arrays, and accepts an object reached twice without a cycle', () => {
    const list: unknown[] = [1];
    list.push({ back: list });
    expect(() => encodeValue(list)).toThrow(InvalidValueError);
    const shared = { id: 1 };
    const value = { a: shared, b: [shared, shared], c: { d: shared } };
    expect(encodeValue(value)).toEqual({ kind: 'json', data: JSON.stringify(value) });
  });

  it('gives exactly the text of JSON.stringify for what it accepts', () => {
    for (const value of [{ b: 1, a: [true, null, 'x', -0, 1e21, { 'é"\n': '\ud800' }] }, [], {}, 0, false, null, 'lone \udc00']) {
      expect(encodeValue(value)).toEqual({ kind: 'json', data: JSON.stringify(value) });
    }
  });

  it('wraps what JSON.stringify or a getter throws in InvalidValueError, with its cause', () => {
    const failing = {
      get broken(): never {
        throw new Error('getter failed');
      },
    };
    expect(() => encodeValue(failing)).toThrow(InvalidValueError);
    expect(() => encodeValue(failing)).toThrow(/Cannot cache this value: getter failed/);
  });
});
