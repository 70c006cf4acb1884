import { GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import middy from '@middy/core';
import { createCipheriv, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { KeyMapper } from '../src/storage/keys.ts';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import type { Context } from 'aws-lambda';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});
const asLambda = (handler: unknown) => handler as (event: unknown, context: Context) => Promise<any>;

const key1 = randomBytes(32);
const key2 = randomBytes(32);
const encryption = { keys: { k1: key1 }, writeKeyId: 'k1' };

/** All items of a table, as the text anyone with read access to the table would see. */
async function tableDump(tableName: string): Promise<string> {
  const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
  return JSON.stringify(scan.Items, (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('latin1') : value));
}

async function rawItem(tableName: string, id: string): Promise<Record<string, AttributeValue>> {
  const item = (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: id } } }))).Item;
  if (item === undefined) throw new Error(`no item ${id}`);
  return item;
}

describe('client-side encryption', () => {
  it.each([
    ['a string', 'the access token 9f2c'],
    ['an object', { token: 'secret-value-123', expiresIn: 3600, scopes: ['a', 'b'] }],
    ['binary', Buffer.from('secret binary payload')],
    ['a large compressible object', { rows: Array.from({ length: 500 }, (_, i) => ({ i, secret: `row-secret-${i}` })) }],
  ])('%s round-trips, and the table shows it only as ciphertext', async (_name, value) => {
    const { cache, tableName } = await db.newCache({ memory: false, encryption });
    await cache.set('k', value);
    expect(await cache.get('k')).toEqual(value);
    const item = await rawItem(tableName, 'k');
    expect(item.cached_value?.B).toBeDefined();
    expect(item.dc_enc?.S).toMatch(/\+aes256gcm2:k1$/);
    expect(await tableDump(tableName)).not.toMatch(/secret|token 9f2c/);
  });

  it('with hashed keys, a table scan shows neither the value nor the key in clear', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, namespace: 'users', encryption, hashKeys: { secret: 'a-long-hmac-secret-for-tests' } });
    await cache.set('email:ada.lovelace@example.com', { ssn: '078-05-1120' });
    expect(await cache.get('email:ada.lovelace@example.com')).toEqual({ ssn: '078-05-1120' });
    const dump = await tableDump(tableName);
    expect(dump).not.toMatch(/lovelace|078-05-1120|ssn/);
    const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
    expect(scan.Items![0]!.id!.S).toMatch(/^users:#dc:m:[\w-]{43}$/); // the namespace stays visible for IAM LeadingKeys
  });

  it('a flipped byte in an encrypted item is a miss and a warning, never an exception', async () => {
    const { cache, tableName, logger } = await db.newCache({ memory: false, encryption });
    await cache.set('k', { secret: 1 });
    const item = await rawItem(tableName, 'k');
    const tampered = Buffer.from(item.cached_value!.B!);
    tampered[tampered.length - 20]! ^= 0x01;
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { ...item, cached_value: { B: tampered } } }));
    expect(await cache.get('k')).toBeUndefined();
    expect(cache.stats().corruptItems).toBe(1);
    expect(logger.warnings[0]!.fields.errorMessage).toMatch(/does not authenticate/);
  });

  it('an item copied onto another key does not decrypt (the key is authenticated data)', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, encryption });
    await cache.set('alice', { balance: 100 });
    const item = await rawItem(tableName, 'alice');
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { ...item, id: { S: 'mallory' } } }));
    expect(await cache.get('mallory')).toBeUndefined();
    expect(await cache.get('alice')).toEqual({ balance: 100 });
  });

  it('a relabelled item (another encoding marker) does not decrypt', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, encryption: { keys: { k1: key1, k2: key1 }, writeKeyId: 'k1' } });
    await cache.set('k', 'v');
    const item = await rawItem(tableName, 'k');
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { ...item, dc_enc: { S: item.dc_enc!.S!.replace(':k1', ':k2') } } }));
    expect(await cache.get('k')).toBeUndefined();
  });

  it('rotation: old items stay readable with the old key, new ones are written with the new key', async () => {
    const { cache: before, tableName } = await db.newCache({ memory: false, encryption });
    await before.set('old', 'written with k1');
    const { cache: after } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1, k2: key2 }, writeKeyId: 'k2' } });
    expect(await after.get('old')).toBe('written with k1');
    await after.set('new', 'written with k2');
    expect((await rawItem(tableName, 'new')).dc_enc?.S).toBe('string+aes256gcm2:k2');
    const { cache: retired, logger } = await db.newCache({ tableName, memory: false, encryption: { keys: { k2: key2 }, writeKeyId: 'k2' } });
    expect(await retired.get('new')).toBe('written with k2');
    expect(await retired.get('old')).toBeUndefined(); // k1 retired: unknown key, a miss
    expect(logger.warnings[0]!.fields.errorMessage).toMatch(/unknown key "k1"/);
  });

  it('an encrypted item read without encryption configured is a miss, never ciphertext returned as a value', async () => {
    const { cache: writer, tableName } = await db.newCache({ memory: false, encryption });
    await writer.set('k', 'secret');
    const { cache: reader } = await db.newCache({ tableName, memory: false });
    expect(await reader.get('k')).toBeUndefined();
    expect(reader.stats().corruptItems).toBe(1);
  });

  describe('key provider function (Secrets Manager, KMS...)', () => {
    it('is called once per environment, shared by concurrent calls, and reused', async () => {
      const provider = vi.fn(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return { k1: key1.toString('base64') };
      });
      const { cache } = await db.newCache({ memory: false, encryption: { keys: provider, writeKeyId: 'k1' } });
      await Promise.all([cache.set('a', 1), cache.set('b', 2), cache.get('a')]);
      expect(await cache.get('b')).toBe(2);
      expect(provider).toHaveBeenCalledTimes(1);
    });

    it('a failing provider makes reads miss and writes return false, stores nothing in clear, and is asked again after a pause', async () => {
      let fail = true;
      const provider = vi.fn(async () => {
        if (fail) throw new Error('AccessDeniedException from Secrets Manager');
        return { k1: key1 };
      });
      const { cache, tableName, logger } = await db.newCache({ memory: false, encryption: { keys: provider, writeKeyId: 'k1' } });
      expect(await cache.set('k', 'secret')).toBe(false);
      expect(await tableDump(tableName)).toBe('[]');
      expect(logger.warnings[0]!.message).toMatch(/could not be encrypted/);
      fail = false;
      // A throttled key source is not hammered: within a second of the failure, nobody asks it again.
      vi.useFakeTimers({ toFake: ['Date'] });
      for (let i = 0; i < 10; i++) expect(await cache.set('k', 'secret')).toBe(false);
      expect(provider).toHaveBeenCalledTimes(1);
      vi.setSystemTime(Date.now() + 1001);
      expect(await cache.set('k', 'secret')).toBe(true);
      expect(await cache.get('k')).toBe('secret');
      expect(provider).toHaveBeenCalledTimes(2);
    });

    it('a provider returning a bad key is a failure of that call, logged, not a crash', async () => {
      const { cache, logger } = await db.newCache({ memory: false, encryption: { keys: async () => ({ k1: 'too-short' }), writeKeyId: 'k1' } });
      expect(await cache.set('k', 1)).toBe(false);
      expect(logger.warnings[0]!.fields.errorMessage).toMatch(/must be 32 bytes/);
    });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a 16-byte key', { keys: { k1: randomBytes(16) }, writeKeyId: 'k1' }, /must be 32 bytes/],
    ['a write key that is not among the keys', { keys: { k1: key1 }, writeKeyId: 'k9' }, /not among the keys/],
    ['a key id with a plus sign', { keys: { 'k+1': key1 }, writeKeyId: 'k+1' }, /writeKeyId must be/],
    ['no write key id', { keys: { k1: key1 } }, /writeKeyId must be/],
  ])('refuses %s with InvalidOptionsError', (_name, options, message) => {
    const build = () => new DynamoCache({ tableName: 'tbl', logger: new RecordingLogger(), encryption: options as never, clientConfig: localClientConfig(db.endpoint) });
    expect(build).toThrow(InvalidOptionsError);
    expect(build).toThrow(message);
  });

  it('refuses a short HMAC secret for hashed keys', () => {
    expect(() => new DynamoCache({ tableName: 'tbl', logger: new RecordingLogger(), hashKeys: { secret: 'short' } })).toThrow(/hashKeys.secret must be at least 16 bytes/);
  });
});

describe('with encryption on, only items this cache can authenticate are read', () => {
  const inAnHour = () => ({ N: String(Math.floor(Date.now() / 1000) + 3600) });

  it.each<[string, Record<string, AttributeValue>]>([
    ['a clear-text string with no marker', { cached_value: { S: 'ATTACKER-TOKEN' } }],
    ['clear-text JSON', { cached_value: { S: '{"role":"admin"}' }, dc_enc: { S: 'json' } }],
    ['a clear-text binary value', { cached_value: { B: Buffer.from('attacker') }, dc_enc: { S: 'buffer' } }],
    ['a clear-text "not found"', { dc_enc: { S: 'none' } }],
  ])('%s planted in the table is a miss and one warning, never served', async (_name, planted) => {
    const { cache, tableName, logger } = await db.newCache({ memory: false, encryption });
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: { S: 'token' }, expires_at: inAnHour(), ...planted } }));
    expect(await cache.get('token')).toBeUndefined();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]!.fields.errorMessage).toMatch(/not (encrypted|authenticated)|authentication tag/);
    expect(cache.stats().corruptItems).toBe(1);
    // getOrSet fetches the real value and replaces the planted item with an encrypted one.
    expect(await cache.getOrSet('token', async () => 'real token')).toBe('real token');
    expect((await rawItem(tableName, 'token')).dc_enc?.S).toMatch(/\+aes256gcm2:k1$/);
  });

  it('a planted clear-text response is not served by the middleware: the handler runs', async () => {
    const { cache, tableName } = await db.newCache({ encryption });
    const handler = middy(async () => ({ statusCode: 200, headers: { 'content-type': 'text/html' }, body: '<p>real page</p>' })).use(
      dynamoCache({ cache, response: { ttlSeconds: 60, keyPrefix: 'fn' } }),
    );
    const first = await asLambda(handler)(httpApiEvent({ path: '/page' }), lambdaContext());
    expect(first.body).toBe('<p>real page</p>');
    const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
    const memo = scan.Items!.find((item) => item.cached_value !== undefined)!;
    const forged = { v: 1, kind: 'http', storedAt: Date.now(), age: 0, response: { statusCode: 200, headers: { 'content-type': 'text/html' }, body: '<script>steal()</script>' } };
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: memo.id!, expires_at: inAnHour(), cached_value: { S: JSON.stringify(forged) }, dc_enc: { S: 'json' } } }));
    const { cache: other } = await db.newCache({ tableName, encryption });
    const handler2 = middy(async () => ({ statusCode: 200, headers: { 'content-type': 'text/html' }, body: '<p>real page</p>' })).use(
      dynamoCache({ cache: other, response: { ttlSeconds: 60, keyPrefix: 'fn' } }),
    );
    const second = await asLambda(handler2)(httpApiEvent({ path: '/page' }), lambdaContext());
    expect(second.body).toBe('<p>real page</p>');
    expect(JSON.stringify(second.headers)).not.toMatch(/Hit/);
  });

  it.each(['expires_at', 'dc_fresh'])('an encrypted item whose %s was edited to extend its life is a miss', async (attribute) => {
    const { cache, tableName, logger } = await db.newCache({ memory: false, encryption });
    await cache.set('token', 'expired token', { ttlSeconds: -60 });
    const item = await rawItem(tableName, 'token');
    const later = attribute === 'expires_at' ? String(Math.floor(Date.now() / 1000) + 3600) : String(Date.now() + 3_600_000);
    // Extend both so only the authentication can tell: the edited attribute, and the other one as it must be to be served.
    const edited = { ...item, [attribute]: { N: later }, ...(attribute === 'dc_fresh' ? { expires_at: inAnHour() } : { dc_fresh: { N: String(Date.now() + 3_600_000) } }) };
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: edited }));
    expect(await cache.get('token')).toBeUndefined();
    expect(logger.warnings[0]!.fields.errorMessage).toMatch(/does not authenticate/);
  });

  it('an encrypted "not found" is authenticated too: a planted one is refused, a real one is a hit', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, encryption, negativeTtlSeconds: 60 });
    expect(await cache.getOrSet('missing', async () => undefined)).toBeUndefined();
    const item = await rawItem(tableName, 'missing');
    expect(item.dc_enc?.S).toBe('none+aes256gcm2:k1');
    expect(await cache.getOrSet('missing', async () => 'should not be fetched')).toBeUndefined();
    expect(cache.stats().negativeHits).toBe(1);
    // Its tag does not carry over to another key.
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { ...item, id: { S: 'other' } } }));
    expect(await cache.getOrSet('other', async () => 'fetched')).toBe('fetched');
  });

  it('encryption.acceptPlaintext reads clear-text items for a migration period, and writes only encrypted ones', async () => {
    const { cache: before, tableName } = await db.newCache({ memory: false });
    await before.set('old', { plain: true });
    const { cache: migrating } = await db.newCache({ tableName, memory: false, encryption: { ...encryption, acceptPlaintext: true } });
    expect(await migrating.get('old')).toEqual({ plain: true });
    await migrating.set('new', 'secret');
    expect((await rawItem(tableName, 'new')).dc_enc?.S).toBe('string+aes256gcm2:k1');
    const { cache: strict } = await db.newCache({ tableName, memory: false, encryption });
    expect(await strict.get('old')).toBeUndefined();
    expect(await strict.get('new')).toBe('secret');
  });

  it('items encrypted by dynamo-cache 0.1 (aes256gcm) are still read, unless encryption.acceptV1Items is false', async () => {
    const tableName = await db.newTable();
    // The 0.1 format: IV, ciphertext, tag; authenticated data "dynamo-cache/v1\n<key>\n<marker>".
    const marker = 'string+aes256gcm:k1';
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key1, iv);
    cipher.setAAD(Buffer.from(`dynamo-cache/v1\nlegacy\n${marker}`));
    const data = Buffer.concat([iv, cipher.update('written by 0.1'), cipher.final(), cipher.getAuthTag()]);
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: { S: 'legacy' }, cached_value: { B: data }, dc_enc: { S: marker }, expires_at: inAnHour(), dc_fresh: { N: String(Date.now() + 600_000) } } }));
    const { cache } = await db.newCache({ tableName, memory: false, encryption });
    expect(await cache.get('legacy')).toBe('written by 0.1');
    const { cache: strict, logger } = await db.newCache({ tableName, memory: false, encryption: { ...encryption, acceptV1Items: false } });
    expect(await strict.get('legacy')).toBeUndefined();
    expect(logger.warnings[0]!.fields.errorMessage).toMatch(/0\.1/);
  });

  it('a planted refresh lease is ignored (no waiting on it), while a real one is honoured', async () => {
    const tableName = await db.newTable();
    const leaseKey = new KeyMapper('').leaseKey('k');
    await db.client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { id: { S: leaseKey }, dc_enc: { S: 'lease' }, dc_lease: { N: String(Date.now() + 60_000) }, dc_owner: { S: 'attacker' }, dc_for: { N: '0' }, expires_at: inAnHour() },
      }),
    );
    const { cache, logger } = await db.newCache({ tableName, memory: false, encryption, lease: { waitMs: 5000 } });
    const started = performance.now();
    expect(await cache.getOrSet('k', async () => 'fetched at once')).toBe('fetched at once');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(cache.stats().leaseWaits).toBe(0);
    expect(logger.warnings.some((w) => /lease is not authenticated/.test(w.message))).toBe(true);
    // A lease taken by a cache with the keys is signed, and honoured by the others.
    const { cache: holder } = await db.newCache({ tableName, memory: false, encryption });
    const { cache: waiter } = await db.newCache({ tableName, memory: false, encryption, lease: { waitMs: 300 } });
    void holder.getOrSet('k2', () => new Promise<never>(() => {}));
    await vi.waitFor(() => expect(holder.stats().leaseWins).toBe(1));
    expect(await waiter.getOrSet('k2', async () => 'after waiting')).toBe('after waiting');
    expect(waiter.stats()).toMatchObject({ leaseWaits: 1, leaseWaitTimeouts: 1 });
  });

  it('an old, authentic lease put back over a live one never makes a waiter answer the stale value', async () => {
    const tableName = await db.newTable();
    const lease = { ttlMs: 1000, waitMs: 2500, pollMs: 50, maxPollMs: 100 };
    const lifetime = { ttlSeconds: 1, staleIfErrorSeconds: 600 };
    const [a, b, c] = await Promise.all([0, 1, 2].map(async () => (await db.newCache({ tableName, memory: false, encryption, lease })).cache));
    expect(await a!.getOrSet('k', async () => 'v1', lifetime)).toBe('v1');
    // Its signed lease item stays readable to anyone who can read the table.
    const oldLease = (await db.client.send(new ScanCommand({ TableName: tableName }))).Items!.find((item) => item.dc_enc?.S === 'lease')!;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // v1 stale (within staleIfError), the old lease over
    const turn = await b!.acquire<string>('k', lifetime);
    expect(turn.found).toBe(false);
    const waiting = c!.getOrSet('k', async () => 'fetched by c', lifetime);
    await vi.waitFor(() => expect(c!.stats().leaseWaits).toBe(1));
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: oldLease }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (!turn.found) await turn.fulfil('v2');
    // The waiter reads the new value or fetches its own; it never mistakes the old lease for its holder's death.
    expect(['v2', 'fetched by c']).toContain(await waiting);
    expect(c!.stats().staleIfError).toBe(0);
  });
});

describe('compression and encryption together (the CRIME/BREACH side channel)', () => {
  const secret = 'sk_live_7f3a9c1e5b2d';
  const storedSize = async (options: object, guess: string): Promise<number> => {
    const { cache, tableName } = await db.newCache({ memory: false, ...options });
    await cache.set('k', { secret, note: `user-controlled ${guess}`, padding: 'x'.repeat(600) });
    return (await rawItem(tableName, 'k')).cached_value!.B!.byteLength;
  };

  it('by default an encrypted value is not compressed, so a guess equal to the secret stores no smaller than a wrong one', async () => {
    const right = await storedSize({ encryption }, secret);
    const wrong = await storedSize({ encryption }, 'zq_mnop_1x8w4v6u0t9r');
    expect(right).toBe(wrong);
  });

  it('compression on an encrypted cache is an explicit choice, and then the size does tell (documented trade-off)', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, encryption, compression: { algorithm: 'br' } });
    await cache.set('k', { rows: 'abc'.repeat(2000) });
    expect((await rawItem(tableName, 'k')).dc_enc?.S).toBe('json+br+aes256gcm2:k1');
    const right = await storedSize({ encryption, compression: { saving: 'bytes' } }, secret);
    const wrong = await storedSize({ encryption, compression: { saving: 'bytes' } }, 'zq_mnop_1x8w4v6u0t9r');
    expect(right).toBeLessThan(wrong);
  });
});
