import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DynamoCacheOptions } from '../src/options.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();
const encryptionKey = randomBytes(32);

/** Every combination of compression (forced on any gain), encryption and hashed keys. */
const CONFIGURATIONS = [false, true].flatMap((compression) =>
  [false, true].flatMap((encryption) =>
    [false, true].map((hashKeys) => ({
      name: `compression ${compression ? 'on' : 'off'}, encryption ${encryption ? 'on' : 'off'}, hashed keys ${hashKeys ? 'on' : 'off'}`,
      options: {
        compression: compression ? { thresholdBytes: 0, strings: true } : false,
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

/** Any JSON value (strings over all of Unicode) or binary, and keys of any Unicode text, some very long. */
const values = fc.oneof(fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }), fc.uint8Array({ maxLength: 3000 }), fc.string({ unit: 'binary' }));
const keys = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), fc.string({ unit: 'binary', minLength: 600, maxLength: 3000 }));

describe('property: values round-trip exactly through dynalite', () => {
  it.each(CONFIGURATIONS)('$name', async ({ options }) => {
    const { cache } = await db.newCache({ memory: false, ...options });
    await fc.assert(
      fc.asyncProperty(keys, values, async (key, value) => {
        expect(await cache.set(key, value)).toBe(true);
        const got = await cache.get(key);
        if (value instanceof Uint8Array) expect(Buffer.from(got as Uint8Array).equals(Buffer.from(value))).toBe(true);
        else expect(got).toStrictEqual(withoutNegativeZero(value));
      }),
      { numRuns: 40 },
    );
    expect(cache.stats().errors).toBe(0);
  });

  it('distinct keys never overwrite each other (the key mapping is one-to-one)', async () => {
    const { cache } = await db.newCache({ memory: false });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(keys, { minLength: 2, maxLength: 6 }), async (distinct) => {
        await Promise.all(distinct.map((key, i) => cache.set(key, i)));
        const many = await cache.getMany(distinct);
        distinct.forEach((key, i) => expect(many.get(key)).toBe(i));
      }),
      { numRuns: 30 },
    );
  });
});

describe('property: arbitrary item contents never make a read throw', () => {
  const markers = fc.oneof(
    fc.constantFrom(undefined, 'json', 'string', 'bytes', 'buffer', 'none', 'chunk', 'json+br', 'json+gzip', 'bytes+br', 'string+aes256gcm:k1', 'json+br+aes256gcm:k1', 'json+zstd', 'json+br+br'),
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
