import { GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();

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
    expect(item.dc_enc?.S).toMatch(/\+aes256gcm:k1$/);
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
    expect((await rawItem(tableName, 'new')).dc_enc?.S).toBe('string+aes256gcm:k2');
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

    it('a failing provider makes reads miss and writes return false, stores nothing in clear, and is asked again', async () => {
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
