// Review finding: with encryption keys from a function (Secrets Manager, KMS...), a failing key provider
// makes reads of an existing encrypted item throw into the caller instead of missing (fail open):
// Keyring.decrypt's key load rejects with the provider's error, and TwoTierStore#decode rethrows every
// error that is not a CorruptItemError or SyntaxError.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { cacheAwsClient } from '../src/aws-clients/cache-aws-client.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { clientCredentialsToken } from '../src/oauth/client-credentials-token.ts';
import { TokenServer } from './support/token-server.ts';
import { S3Server } from './support/s3-server.ts';
import { describe, expect, it } from 'vitest';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();
const key1 = randomBytes(32);

describe('review: a failing encryption key provider on read', () => {
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
