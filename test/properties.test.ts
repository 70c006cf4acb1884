import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { INLINE_LIMIT_FOR_TESTS, type DynamoCacheOptions } from '../src/options.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();
const encryptionKey = randomBytes(32);

/** Runs per configuration: `PROPERTY_RUNS` overrides it (more for a soak, fewer while iterating). */
const RUNS = Number(process.env.PROPERTY_RUNS ?? 2000);

/** Every combination of compression (forced on any gain), encryption and hashed keys. */
const CONFIGURATIONS = [false, true].flatMap((compression) =>
  [false, true].flatMap((encryption) =>
    [false, true].map((hashKeys) => ({
      name: `compression ${compression ? 'on' : 'off'}, encryption ${encryption ? 'on' : 'off'}, hashed keys ${hashKeys ? 'on' : 'off'}`,
      options: {
        compression: compression ? { thresholdBytes: 0, strings: true, saving: 'bytes' } : false,
        ...(encryption ? { encryption: { keys: { k1: encryptionKey }, writeKeyId: 'k1' } } : {}),
        ...(hashKeys ? { hashKeys: { secret: 'property-test-hmac-secret' } } : {}),
      } satisfies DynamoCacheOptions,
    })),
  ),
);

/** JSON has no negative zero: `-0` is the one value that comes back changed, as `0` (see `encodeValue`). */
function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNegativeZero(v)]));
  return value;
}

/**
 * Code points at the edges: NUL, the byte order mark (a character, which a UTF-8 decoder may strip when it
 * leads), the noncharacters U+FFFE/U+FFFF, the last code point, both sides of the surrogate block and the
 * first astral one. Lone surrogates are excluded: they have no UTF-8 form (and are refused as keys).
 */
const EDGE_CHARACTERS = ['\u0000', '\ufeff', '\ufffe', '\uffff', '\u{10ffff}', '\ud7ff', '\ue000', '\u{10000}', '\u0080', '\u07ff', '\u0800'];
const edgeString = fc
  .array(fc.oneof(fc.constantFrom(...EDGE_CHARACTERS), fc.string({ unit: 'binary', maxLength: 8 })), { maxLength: 12 })
  .map((parts) => parts.join(''));
/** Any Unicode text, often empty, often led by U+FEFF, often full of edge code points. */
const text = fc.oneof(
  fc.constant(''),
  fc.string({ unit: 'binary' }),
  edgeString,
  edgeString.map((s) => `\ufeff${s}`),
  fc.string({ unit: 'binary' }).map((s) => `\ufeff${s}`),
);
/** Any JSON value (strings over all of Unicode and the edge texts) or binary, and keys of any Unicode text, some very long. */
const values = fc.oneof(
  text,
  fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }),
  fc.dictionary(text, text, { maxKeys: 4 }),
  fc.array(text, { maxLength: 4 }),
  fc.uint8Array({ maxLength: 3000 }),
);
const keys = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), edgeString.filter((s) => s !== ''), fc.string({ unit: 'binary', minLength: 600, maxLength: 3000 }));

/** Sizes of values around and across several multiples of a chunk size. */
function acrossChunks(chunkBytes: number, max: number): fc.Arbitrary<unknown> {
  const size = fc.oneof(fc.integer({ min: 0, max }), fc.integer({ min: 1, max: Math.floor(max / chunkBytes) }).chain((n) => fc.integer({ min: n * chunkBytes - 4, max: n * chunkBytes + 4 })));
  return fc.oneof(
    size.map((n) => new Uint8Array(n).map((_, i) => (i * 2654435761) >>> 24)),
    fc.tuple(text, size).map(([t, n]) => `\ufeff${t}${'é'.repeat(n >> 1)}`),
    fc.tuple(text, size).map(([t, n]) => ({ t, filler: 'x'.repeat(n) })),
  );
}

function expectSame(got: unknown, value: unknown): void {
  if (value instanceof Uint8Array) expect(Buffer.from(got as Uint8Array).equals(Buffer.from(value))).toBe(true);
  else expect(got).toStrictEqual(withoutNegativeZero(value));
}

describe('property: values round-trip exactly through dynalite', () => {
  it.each(CONFIGURATIONS)('$name', async ({ options }) => {
    const { cache: writer, tableName } = await db.newCache({ memory: false, ...options });
    // Another environment reads: nothing comes from the writer's memory.
    const { cache: reader } = await db.newCache({ tableName, memory: false, ...options });
    await fc.assert(
      fc.asyncProperty(keys, values, async (key, value) => {
        expect(await writer.set(key, value)).toBe(true);
        expectSame(await reader.get(key), value);
      }),
      { numRuns: RUNS },
    );
    expect(reader.stats().errors).toBe(0);
  });

  it.each<{ name: string; options: DynamoCacheOptions }>([
    { name: 'chunked sizes, plain', options: { compression: false } },
    { name: 'chunked sizes, compressed, encrypted, hashed keys', options: CONFIGURATIONS.at(-1)!.options },
  ])('$name (chunk size lowered to 1,000 bytes)', async ({ options }) => {
    const smallChunks = { [INLINE_LIMIT_FOR_TESTS]: 1000 } as DynamoCacheOptions;
    const { cache: writer, tableName } = await db.newCache({ memory: false, ...options, ...smallChunks });
    const { cache: reader } = await db.newCache({ tableName, memory: false, ...options, ...smallChunks });
    await fc.assert(
      fc.asyncProperty(keys, acrossChunks(1000, 5000), async (key, value) => {
        expect(await writer.set(key, value)).toBe(true);
        expectSame(await reader.get(key), value);
      }),
      { numRuns: RUNS },
    );
    expect(reader.stats().errors).toBe(0);
  });

  it('values at the real chunking threshold (390,000 bytes) round-trip', async () => {
    const { cache: writer, tableName } = await db.newCache({ memory: false, compression: false });
    const { cache: reader } = await db.newCache({ tableName, memory: false, compression: false });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 389_990, max: 390_010 }), fc.boolean(), async (size, binary) => {
        const value = binary ? new Uint8Array(size).fill(7) : `\ufeff${'a'.repeat(size - 3)}`;
        expect(await writer.set('big', value)).toBe(true);
        expectSame(await reader.get('big'), value);
      }),
      { numRuns: 12 },
    );
  });

  it('distinct keys never overwrite each other (the key mapping is one-to-one)', async () => {
    const { cache } = await db.newCache({ memory: false });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(keys, { minLength: 2, maxLength: 6 }), async (distinct) => {
        await Promise.all(distinct.map((key, i) => cache.set(key, i)));
        const many = await cache.getMany(distinct);
        distinct.forEach((key, i) => expect(many.get(key)).toBe(i));
      }),
      { numRuns: 200 },
    );
  });
});

describe('property: arbitrary item contents never make a read throw', () => {
  const markers = fc.oneof(
    fc.constantFrom(
      undefined, 'json', 'string', 'bytes', 'buffer', 'none', 'chunk', 'lease', 'json+br', 'json+gzip', 'bytes+br', 'string+aes256gcm:k1', 'json+br+aes256gcm:k1',
      'string+aes256gcm2:k1', 'none+aes256gcm2:k1', 'none+br', 'json+zstd', 'json+br+br',
    ),
    fc.string({ maxLength: 20 }),
  );
  const valueAttribute = fc.oneof(
    fc.uint8Array({ maxLength: 2000 }).map((bytes): AttributeValue => ({ B: bytes })),
    fc.string({ unit: 'binary', maxLength: 500 }).map((text): AttributeValue => ({ S: text })),
    fc.integer().map((n): AttributeValue => ({ N: String(n) })),
  );
  const extras = fc.record(
    {
      dc_chunks: fc.integer({ min: -2, max: 5 }).map((n): AttributeValue => ({ N: String(n) })),
      dc_gen: fc.string({ maxLength: 10 }).map((s): AttributeValue => ({ S: s })),
      dc_sum: fc.string({ maxLength: 10 }).map((s): AttributeValue => ({ S: s })),
      dc_size: fc.integer({ min: 0, max: 10 }).map((n): AttributeValue => ({ N: String(n) })),
      dc_fresh: fc.oneof(fc.integer().map((n): AttributeValue => ({ N: String(n) })), fc.constant<AttributeValue>({ S: 'soon' })),
      dc_lease: fc.integer().map((n): AttributeValue => ({ N: String(n) })),
    },
    { requiredKeys: [] },
  );

  it('get, getMany and getOrSet resolve (a miss or a value) whatever bytes and markers the item holds', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, encryption: { keys: { k1: encryptionKey }, writeKeyId: 'k1' }, lease: { waitMs: 50 } });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(valueAttribute, markers, extras, fc.boolean(), async (value, marker, extra, withValue) => {
        const id = `garbage-${++n}`;
        const item: Record<string, AttributeValue> = { id: { S: id }, expires_at: { N: String(Math.floor(Date.now() / 1000) + 600) }, ...extra };
        if (withValue) item.cached_value = value;
        if (marker !== undefined) item.dc_enc = { S: marker };
        await db.client.send(new PutItemCommand({ TableName: tableName, Item: item }));
        // Each resolves (a rejection fails the property); a generated item may even be a valid cached "not found".
        await cache.get(id);
        await cache.getMany([id]);
        const answer = await cache.getOrSet(id, async () => 'fresh value');
        if (marker !== 'none' || withValue) expect(answer).toBeDefined();
      }),
      { numRuns: 150 },
    );
  });
});
