// The encryption key source (a function reading Secrets Manager, KMS...) is a dependency that can fail
// or be slow like DynamoDB: the cache then misses (fail open) and never waits for it past `keysTimeoutMs`,
// the call's deadline or its signal.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { cacheAwsClient } from '../src/aws-clients/cache-aws-client.ts';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { clientCredentialsToken } from '../src/oauth/client-credentials-token.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { json, setupMiddy } from './support/middy-harness.ts';
import { S3Server } from './support/s3-server.ts';
import { TokenServer } from './support/token-server.ts';

const db = useDynalite();
const key1 = randomBytes(32);
/** A key source as slow as a throttled Secrets Manager with the SDK's retries. */
const slowKeys = async () => {
  await sleep(3000);
  return { k1: key1 };
};

describe('a failing key source: reads are misses, never exceptions', () => {
  async function written() {
    const { tableName } = await db.newCache();
    const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
    expect(await writer.set('k', 'secret value')).toBe(true);
    // Another execution environment whose key provider is failing (Secrets Manager throttled, KMS denied...).
    const failing = async () => {
      throw new Error('ThrottlingException from Secrets Manager');
    };
    return db.newCache({ tableName, memory: false, encryption: { keys: failing, writeKeyId: 'k1' } });
  }

  it('get is a miss, not an exception', async () => {
    const { cache } = await written();
    await expect(cache.get('k')).resolves.toBeUndefined();
  });

  it('getOrSet runs the fetcher, not an exception', async () => {
    const { cache } = await written();
    await expect(cache.getOrSet('k', async () => 'fetched')).resolves.toBe('fetched');
  });

  it('a provider that returns a malformed key is a miss on read too', async () => {
    const { tableName } = await db.newCache();
    const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
    await writer.set('k', 'secret value');
    const { cache } = await db.newCache({ tableName, memory: false, encryption: { keys: async () => ({ k1: 'too-short' }), writeKeyId: 'k1' } });
    await expect(cache.get('k')).resolves.toBeUndefined();
  });

  it('a cached AWS SDK read answers from S3 (which is healthy), not with the key provider\'s error', async () => {
    const s3 = await S3Server.start();
    try {
      s3.put('bucket', 'config.json', '{"feature":true}');
      const client = () => new S3Client({ ...localAwsConfig(s3.endpoint), forcePathStyle: true, maxAttempts: 1 });
      const commands = { GetObjectCommand: { ttlSeconds: 60 } };
      const { tableName } = await db.newCache();
      const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
      const first = await cacheAwsClient(client(), { cache: writer, commands }).send(new GetObjectCommand({ Bucket: 'bucket', Key: 'config.json' }));
      await first.Body!.transformToString();
      const failing = async () => {
        throw new Error('ThrottlingException from Secrets Manager');
      };
      const { cache } = await db.newCache({ tableName, memory: false, encryption: { keys: failing, writeKeyId: 'k1' } });
      const output = await cacheAwsClient(client(), { cache, commands }).send(new GetObjectCommand({ Bucket: 'bucket', Key: 'config.json' }));
      expect(await output.Body!.transformToString()).toBe('{"feature":true}');
    } finally {
      await s3.close();
    }
  });

  it('the token provider gets a token from the (healthy) endpoint, not the key provider\'s error', async () => {
    const server = await TokenServer.start();
    try {
      const options = { tokenUrl: server.url, clientId: 'demo-client', clientSecret: 'demo-secret' };
      const { tableName } = await db.newCache();
      const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
      expect(await clientCredentialsToken({ cache: writer, ...options })()).toMatch(/^token-/);
      const failing = async () => {
        throw new Error('ThrottlingException from Secrets Manager');
      };
      const { cache } = await db.newCache({ tableName, memory: false, encryption: { keys: failing, writeKeyId: 'k1' } });
      await expect(clientCredentialsToken({ cache, ...options })()).resolves.toMatch(/^token-/);
    } finally {
      await server.close();
    }
  });
});

describe('a slow key source: no call waits for it past its budget', () => {
  it("get settles when the caller's signal aborts, not when the key source answers", async () => {
    const { tableName } = await db.newCache();
    const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
    await writer.set('k', 'secret');
    const { cache } = await db.newCache({ tableName, memory: false, encryption: { keys: slowKeys, writeKeyId: 'k1' } });
    const started = performance.now();
    await cache.get('k', { signal: AbortSignal.timeout(200) }).catch(() => undefined);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('a memoized request answers within its invocation, not after the key source', async () => {
    const { invoke } = await setupMiddy(db, async () => json(200, { ok: true }), { encryption: { keys: slowKeys, writeKeyId: 'k1' }, response: { ttlSeconds: 60 } });
    const started = performance.now();
    const response = await invoke(httpApiEvent({ path: '/items' }), lambdaContext('users-api', 1500));
    expect(response.statusCode).toBe(200);
    expect(performance.now() - started).toBeLessThan(1500);
  });
});

describe('a caller that aborted before its value is stored', () => {
  it('a turn ended after the abort settles at once, not after keysTimeoutMs', async () => {
    const hanging = () => new Promise<Record<string, Uint8Array>>((resolve) => setTimeout(() => resolve({ k1: key1 }), 20_000).unref());
    const { cache } = await db.newCache({ memory: false, lease: false, encryption: { keys: hanging, writeKeyId: 'k1', keysTimeoutMs: 6000 } });
    const controller = new AbortController();
    const turn = await cache.acquire<string>('k', { signal: controller.signal });
    expect(turn.found).toBe(false);
    controller.abort(new Error('caller gave up'));
    const abortedAt = performance.now();
    if (!turn.found) expect(await turn.fulfil('value')).toBe(false);
    expect(performance.now() - abortedAt).toBeLessThan(2000);
  });
});

describe('keysTimeoutMs', () => {
  it('bounds the wait for the keys without a deadline: a miss (logged, counted), a write that resolves false; later calls use the keys once loaded', async () => {
    const { tableName } = await db.newCache();
    const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
    await writer.set('k', 'secret value');
    let loads = 0;
    const keys = async () => {
      loads++;
      await sleep(600);
      return { k1: key1 };
    };
    const { cache, logger } = await db.newCache({ tableName, memory: false, encryption: { keys, writeKeyId: 'k1', keysTimeoutMs: 100 } });
    const started = performance.now();
    expect(await cache.get('k')).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(500);
    expect(await cache.set('other', 'value')).toBe(false);
    expect(logger.warnings.some((w) => w.message === 'dynamo-cache: encryption keys unavailable; treated as a miss')).toBe(true);
    expect(cache.stats().errors).toBeGreaterThanOrEqual(2);
    await sleep(700); // the load went on
    expect(await cache.get('k')).toBe('secret value');
    expect(loads).toBe(1);
  });

  it('must be a positive number', async () => {
    for (const keysTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new DynamoCache({ tableName: 't', encryption: { keys: { k1: key1 }, writeKeyId: 'k1', keysTimeoutMs } })).toThrow(InvalidOptionsError);
    }
  });
});
