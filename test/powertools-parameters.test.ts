import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cacheAwsClient } from '../src/aws-clients/cache-aws-client.ts';
import type { DynamoCache } from '../src/cache.ts';
import { AwsJsonServer } from './support/aws-json-server.ts';
import { useDynalite } from './support/fixtures.ts';
import { localAwsConfig } from './support/local-aws.ts';

/**
 * Powertools Parameters (SSM and Secrets Manager providers) on clients cached with `cacheAwsClient`: each
 * provider keeps its values in its own execution environment for `maxAge`, and the cached client makes the
 * fleet share one read of the service per cache expiry. Two simulated execution environments: two caches
 * (separate memory tiers and SDK clients) on one table, each with its own provider.
 */
const db = useDynalite();
const encryption = { keys: { k1: Buffer.alloc(32, 7).toString('base64') }, writeKeyId: 'k1' };
let aws: AwsJsonServer;
let version = 1;

beforeAll(async () => {
  aws = await AwsJsonServer.start({
    GetParameter: (input) => ({
      Parameter: { Name: input.Name, Type: 'SecureString', Value: input.WithDecryption ? `postgres://db-${version}` : 'AQICAHh-ciphertext', Version: version },
    }),
    GetSecretValue: (input) => ({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${input.SecretId}`, Name: input.SecretId, SecretString: '{"apiKey":"k-1"}' }),
  });
});
afterAll(async () => {
  await aws?.close();
});
beforeEach(() => {
  aws.reset();
  version = 1;
});

/** Two execution environments on one cache table. */
async function environments(): Promise<[DynamoCache, DynamoCache]> {
  const { cache, tableName } = await db.newCache({ namespace: 'params', encryption });
  const { cache: other } = await db.newCache({ tableName, namespace: 'params', encryption });
  return [cache, other];
}

describe('Powertools Parameters on a cacheAwsClient', () => {
  it('SSMProvider takes the cached client as its own (no fallback to a default client)', async () => {
    const [cache] = await environments();
    const warn = vi.spyOn(console, 'warn');
    const client = cacheAwsClient(new SSMClient(localAwsConfig(aws.endpoint)), { cache, commands: { GetParameterCommand: { ttlSeconds: 300 } } });
    const provider = new SSMProvider({ awsSdkV3Client: client });
    expect(provider.client).toBe(client);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('getParameter in two environments, each with its own provider, makes one SSM call; the next one after the cache expires', async () => {
    const providers = (await environments()).map(
      (cache) => new SSMProvider({ awsSdkV3Client: cacheAwsClient(new SSMClient(localAwsConfig(aws.endpoint)), { cache, commands: { GetParameterCommand: { ttlSeconds: 1 } } }) }),
    );
    expect(await Promise.all(providers.map((provider) => provider.get('/app/db-url', { decrypt: true })))).toEqual(['postgres://db-1', 'postgres://db-1']);
    expect(aws.count('GetParameter')).toBe(1);
    // Powertools' own cache (maxAge, 5 s by default) answers within each environment; past it, the fleet cache does.
    expect(await providers[1]!.get('/app/db-url', { decrypt: true, forceFetch: true })).toBe('postgres://db-1');
    expect(aws.count('GetParameter')).toBe(1);

    // The parameter changes; once the cache's TTL has passed, both environments refresh with one call.
    version = 2;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await Promise.all(providers.map((provider) => provider.get('/app/db-url', { decrypt: true, forceFetch: true })))).toEqual(['postgres://db-2', 'postgres://db-2']);
    expect(aws.count('GetParameter')).toBe(2);
  });

  it('a decrypted SecureString is stored encrypted in the table (the cache has encryption; without it, it would not be cached)', async () => {
    const [cache] = await environments();
    const provider = new SSMProvider({ awsSdkV3Client: cacheAwsClient(new SSMClient(localAwsConfig(aws.endpoint)), { cache, commands: { GetParameterCommand: { ttlSeconds: 300 } } }) });
    expect(await provider.get('/app/db-url', { decrypt: true })).toBe('postgres://db-1');
    const { Items = [] } = await db.client.send(new ScanCommand({ TableName: cache.tableName }));
    expect(Items.length).toBeGreaterThan(0);
    expect(JSON.stringify(Items)).not.toContain('postgres://');
  });

  it('SecretsProvider: a secret read in two environments is one Secrets Manager call', async () => {
    const providers = (await environments()).map(
      (cache) => new SecretsProvider({ awsSdkV3Client: cacheAwsClient(new SecretsManagerClient(localAwsConfig(aws.endpoint)), { cache, commands: { GetSecretValueCommand: { ttlSeconds: 300 } } }) }),
    );
    expect(await Promise.all(providers.map((provider) => provider.get('payments-api', { transform: 'json' })))).toEqual([{ apiKey: 'k-1' }, { apiKey: 'k-1' }]);
    expect(aws.count('GetSecretValue')).toBe(1);
  });
});
