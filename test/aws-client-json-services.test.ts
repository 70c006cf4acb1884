import { BatchGetItemCommand, CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  AdminGetUserCommand,
  AdminUpdateUserAttributesCommand,
  CognitoIdentityProviderClient,
  DescribeUserPoolClientCommand,
  DescribeUserPoolCommand,
  GetUserCommand,
  ListUsersCommand,
  UserNotFoundException,
} from '@aws-sdk/client-cognito-identity-provider';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsCacheStatusOf, cacheAwsClient, type CachedCommandOptions } from '../src/aws-clients/cache-aws-client.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { FAILED_REFRESH_RETRY_MS } from '../src/refresh/coordinator.ts';
import { AwsJsonServer, ServiceFault } from './support/aws-json-server.ts';
import { localClientConfig, untilActive } from './support/dynalite.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { useDynalite } from './support/fixtures.ts';
import { StsServer } from './support/sts-server.ts';

const db = useDynalite();
const encryption = { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' };
const CREATED = 1_700_000_000.25; // epoch seconds, as the JSON protocol sends timestamps

let cognito: AwsJsonServer;
let ssm: AwsJsonServer;

beforeAll(async () => {
  cognito = await AwsJsonServer.start({
    AdminGetUser: (input) => {
      if (input.Username === 'ghost') throw new ServiceFault('UserNotFoundException', 'User does not exist.');
      return user(String(input.Username));
    },
    GetUser: () => user('self'),
    AdminUpdateUserAttributes: () => ({}),
    ListUsers: (input) => ({ Users: input.UserPoolId === 'empty-pool' ? [] : [{ Username: 'ada', Attributes: [{ Name: 'email', Value: 'ada@example.com' }], Enabled: true }] }),
    DescribeUserPool: (input) => ({ UserPool: { Id: input.UserPoolId, Name: 'app-users', CreationDate: CREATED, MfaConfiguration: 'OFF' } }),
    DescribeUserPoolClient: (input) => ({
      UserPoolClient: { UserPoolId: input.UserPoolId, ClientId: input.ClientId, ClientName: 'backend', ClientSecret: 'the-client-secret-value', CreationDate: CREATED },
    }),
  });
  ssm = await AwsJsonServer.start({
    GetParameter: (input) => {
      if (input.Name === '/missing') throw new ServiceFault('ParameterNotFound', 'Parameter /missing not found.');
      return { Parameter: { Name: input.Name, Type: 'SecureString', Value: input.WithDecryption ? 'plain-db-password' : 'AQICAHh-ciphertext', Version: 3, LastModifiedDate: CREATED } };
    },
    GetSecretValue: (input) => ({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${input.SecretId}`, Name: input.SecretId, SecretString: '{"password":"p"}', CreatedDate: CREATED }),
  });
});
afterAll(async () => {
  await cognito?.close();
  await ssm?.close();
});
beforeEach(() => {
  cognito.reset();
  ssm.reset();
});

function user(username: string) {
  return { Username: username, UserAttributes: [{ Name: 'email', Value: `${username}@example.com` }], UserCreateDate: CREATED, Enabled: true, UserStatus: 'CONFIRMED' };
}

/** A cache on a fresh table (or `tableName`) and a real client of that service, cached, on the local endpoint. */
async function cached<TClient extends CognitoIdentityProviderClient | SSMClient | SecretsManagerClient>(
  Client: new (config: object) => TClient,
  server: AwsJsonServer,
  commands: Record<string, CachedCommandOptions>,
  options: DynamoCacheOptions = {},
) {
  const { cache, logger } = await db.newCache(options);
  const client = cacheAwsClient(new Client({ ...localAwsConfig(server.endpoint), maxAttempts: 1 }), { cache, commands });
  return { cache, logger, client };
}

describe('cacheAwsClient with the real Cognito Identity Provider client', () => {
  it('AdminGetUser: a hit skips Cognito, and Dates come back as Dates', async () => {
    const { client } = await cached(CognitoIdentityProviderClient, cognito, { AdminGetUserCommand: { ttlSeconds: 60 } }, { encryption });
    const first = await client.send(new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'ada' }));
    const second = await client.send(new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'ada' }));
    const other = await client.send(new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'grace' }));
    expect(cognito.count('AdminGetUser')).toBe(2);
    expect([awsCacheStatusOf(first), awsCacheStatusOf(second), awsCacheStatusOf(other)]).toEqual(['miss', 'hit', 'miss']);
    expect(second.UserCreateDate).toBeInstanceOf(Date);
    expect(second.UserCreateDate!.getTime()).toBe(CREATED * 1000);
    expect({ ...second, $metadata: undefined }).toEqual({ ...first, $metadata: undefined });
    expect(other.UserAttributes).toEqual([{ Name: 'email', Value: 'grace@example.com' }]);
  });

  it('stale-if-error on TooManyRequestsException; the stale output is marked stale', async () => {
    const { client } = await cached(CognitoIdentityProviderClient, cognito, { DescribeUserPoolCommand: { ttlSeconds: 0.2, staleIfErrorSeconds: 60 } }, { memory: false });
    const fresh = await client.send(new DescribeUserPoolCommand({ UserPoolId: 'pool' }));
    await sleep(300);
    cognito.failNext(1, 'TooManyRequestsException');
    const stale = await client.send(new DescribeUserPoolCommand({ UserPoolId: 'pool' }));
    expect(awsCacheStatusOf(stale)).toBe('stale');
    expect(stale.UserPool).toEqual(fresh.UserPool);
    expect(stale.UserPool!.CreationDate).toBeInstanceOf(Date);
    expect(cognito.count('DescribeUserPool')).toBe(2);
  });

  it('without staleIfErrorSeconds the TooManyRequestsException reaches the caller unchanged', async () => {
    const { client } = await cached(CognitoIdentityProviderClient, cognito, { DescribeUserPoolCommand: { ttlSeconds: 0.2 } }, { memory: false });
    await client.send(new DescribeUserPoolCommand({ UserPoolId: 'pool' }));
    await sleep(300);
    cognito.failNext(1, 'TooManyRequestsException');
    await expect(client.send(new DescribeUserPoolCommand({ UserPoolId: 'pool' }))).rejects.toMatchObject({ name: 'TooManyRequestsException', $fault: 'client' });
  });

  it('DescribeUserPoolClient (every answer holds ClientId, marked sensitive by the SDK) is refused at configuration without encryption; with it, or allowPlaintext, it is cached', async () => {
    const { cache } = await db.newCache();
    expect(() => cacheAwsClient(new CognitoIdentityProviderClient(localAwsConfig(cognito.endpoint)), { cache, commands: { DescribeUserPoolClientCommand: { ttlSeconds: 60 } } })).toThrow(
      /commands.DescribeUserPoolClientCommand: every answer holds UserPoolClient.ClientId, which the AWS SDK marks sensitive.*configure the cache's encryption, or set allowPlaintext: true/,
    );
    const allowed = [
      { options: { encryption }, commands: { DescribeUserPoolClientCommand: { ttlSeconds: 60 } } },
      { options: {}, commands: { DescribeUserPoolClientCommand: { ttlSeconds: 60, allowPlaintext: true } } },
    ];
    for (const { options, commands } of allowed) {
      const { client, cache: used } = await cached(CognitoIdentityProviderClient, cognito, commands, options);
      await client.send(new DescribeUserPoolClientCommand({ UserPoolId: 'pool', ClientId: 'client' }));
      const hit = await client.send(new DescribeUserPoolClientCommand({ UserPoolId: 'pool', ClientId: 'client' }));
      expect(awsCacheStatusOf(hit)).toBe('hit');
      expect(hit.UserPoolClient!.ClientSecret).toBe('the-client-secret-value');
      const dump = JSON.stringify((await db.client.send(new ScanCommand({ TableName: used.tableName }))).Items);
      expect(dump.includes('the-client-secret-value')).toBe(options.encryption === undefined);
    }
    expect(cognito.count('DescribeUserPoolClient')).toBe(2);
  });

  it('ListUsers: an answer that holds sensitive members goes to Cognito uncached, counted, with one warning naming the fix; an empty one is cached', async () => {
    const { client, cache, logger } = await cached(CognitoIdentityProviderClient, cognito, { ListUsersCommand: { ttlSeconds: 60 } });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push(awsCacheStatusOf(await client.send(new ListUsersCommand({ UserPoolId: 'pool' }))));
    expect(statuses).toEqual(['bypass', 'bypass', 'bypass']);
    expect(cognito.count('ListUsers')).toBe(3);
    expect(cache.stats().secretsNotStored).toBe(3);
    const warnings = logger.warnings.filter((w) => /ListUsersCommand not cached/.test(w.message));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/its output carries Users\[\]\.Username, Users\[\]\.Attributes\[\]\.Value, which the AWS SDK marks sensitive; configure the cache's encryption, or set allowPlaintext: true/);
    const empty = [];
    for (let i = 0; i < 2; i += 1) empty.push(awsCacheStatusOf(await client.send(new ListUsersCommand({ UserPoolId: 'empty-pool' }))));
    expect(empty).toEqual(['miss', 'hit']);
    expect(cache.stats().secretsNotStored).toBe(3);
  });

  it("GetUser: the caller's AccessToken is part of the key but never stored; each token gets its own user", async () => {
    const { client, cache } = await cached(CognitoIdentityProviderClient, cognito, { GetUserCommand: { ttlSeconds: 60, allowPlaintext: true } });
    const tokens = ['eyJ-access-token-of-ada', 'eyJ-access-token-of-grace'];
    for (const AccessToken of [...tokens, ...tokens]) await client.send(new GetUserCommand({ AccessToken }));
    expect(cognito.count('GetUser')).toBe(2);
    const dump = JSON.stringify((await db.client.send(new ScanCommand({ TableName: cache.tableName }))).Items);
    expect(dump).toContain('self@example.com'); // allowPlaintext: the output is there in clear
    for (const token of tokens) expect(dump).not.toContain(token);
  });

  it('UserNotFoundException becomes a negative entry with negativeTtlSeconds, thrown again as the same error', async () => {
    const { client } = await cached(CognitoIdentityProviderClient, cognito, { AdminGetUserCommand: { ttlSeconds: 60, negativeTtlSeconds: 30 } }, { encryption });
    const live = await client.send(new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'ghost' })).catch((error: unknown) => error);
    const fromCache = await client.send(new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'ghost' })).catch((error: unknown) => error);
    expect(cognito.count('AdminGetUser')).toBe(1);
    expect(live).toBeInstanceOf(UserNotFoundException);
    expect(fromCache).toBeInstanceOf(UserNotFoundException);
    expect(fromCache).toMatchObject({ name: 'UserNotFoundException', message: 'User does not exist.', $metadata: { cache: 'hit' } });
  });

  it('invalidate(command, rejected) ends a cached "not found" once the user exists; the marked command never reaches Cognito', async () => {
    const { client } = await cached(CognitoIdentityProviderClient, cognito, { AdminGetUserCommand: { ttlSeconds: 60, negativeTtlSeconds: 300 } }, { encryption });
    const command = () => new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'ghost' });
    await client.send(command()).catch(() => undefined);
    const cachedError = await client.send(command()).catch((error: unknown) => error as object);
    expect(cachedError).toMatchObject({ $metadata: { cache: 'hit' } });
    expect(cognito.count()).toBe(1);
    expect(await client.invalidate(command(), cachedError)).toBe(true);
    expect(cognito.count()).toBe(1); // invalidate itself calls nobody
    await client.send(command()).catch(() => undefined); // asked again
    expect(cognito.count('AdminGetUser')).toBe(2);
    expect(await client.invalidate(command(), cachedError)).toBe(false); // the "not found" stored since is another answer
    await expect(client.invalidate(new AdminUpdateUserAttributesCommand({ UserPoolId: 'pool', Username: 'ada', UserAttributes: [] }))).rejects.toThrow(
      /AdminUpdateUserAttributesCommand is not cached by this client/,
    );
    expect(cognito.count('AdminUpdateUserAttributes')).toBe(0);
  });

  it('uncached commands (a write) pass through untouched', async () => {
    const { client } = await cached(CognitoIdentityProviderClient, cognito, { AdminGetUserCommand: { ttlSeconds: 60 } }, { encryption });
    for (let i = 0; i < 2; i += 1) {
      const output = await client.send(new AdminUpdateUserAttributesCommand({ UserPoolId: 'pool', Username: 'ada', UserAttributes: [] }));
      expect(awsCacheStatusOf(output)).toBeUndefined();
    }
    expect(cognito.count('AdminUpdateUserAttributes')).toBe(2);
  });
});

describe('cacheAwsClient with the real SSM and Secrets Manager clients', () => {
  it('GetParameter: every answer holds Parameter.Value (marked sensitive by the SDK), so it is refused at configuration without encryption, and cached with it (or allowPlaintext)', async () => {
    const { cache } = await db.newCache();
    expect(() => cacheAwsClient(new SSMClient(localAwsConfig(ssm.endpoint)), { cache, commands: { GetParameterCommand: { ttlSeconds: 60 } } })).toThrow(
      /commands.GetParameterCommand: every answer holds Parameter.Value, which the AWS SDK marks sensitive.*configure the cache's encryption, or set allowPlaintext: true/,
    );
    const { client } = await cached(SSMClient, ssm, { GetParameterCommand: { ttlSeconds: 60 } }, { encryption });
    const first = await client.send(new GetParameterCommand({ Name: '/db/password', WithDecryption: true }));
    const second = await client.send(new GetParameterCommand({ Name: '/db/password', WithDecryption: true }));
    expect(awsCacheStatusOf(second)).toBe('hit');
    expect(second.Parameter).toEqual(first.Parameter);
    expect(second.Parameter!.LastModifiedDate).toBeInstanceOf(Date);
    const plain = await cached(SSMClient, ssm, { GetParameterCommand: { ttlSeconds: 60, allowPlaintext: true } });
    for (let i = 0; i < 2; i += 1) await plain.client.send(new GetParameterCommand({ Name: '/feature/flag' }));
    expect(ssm.count('GetParameter')).toBe(2);
  });

  it('stale-if-error on ThrottlingException', async () => {
    const { client } = await cached(SSMClient, ssm, { GetParameterCommand: { ttlSeconds: 0.2, staleIfErrorSeconds: 60 } }, { encryption, memory: false });
    await client.send(new GetParameterCommand({ Name: '/feature/flag' }));
    await sleep(300);
    ssm.failNext(1, 'ThrottlingException');
    const stale = await client.send(new GetParameterCommand({ Name: '/feature/flag' }));
    expect(awsCacheStatusOf(stale)).toBe('stale');
    expect(stale.Parameter!.Value).toBe('AQICAHh-ciphertext');
    // Healed: the next call once the failed refresh's backoff is over refreshes (the fleet leaves a failing service alone meanwhile).
    await sleep(2 * FAILED_REFRESH_RETRY_MS);
    const fresh = await client.send(new GetParameterCommand({ Name: '/feature/flag' }));
    expect(awsCacheStatusOf(fresh)).toBe('miss');
    expect(ssm.count('GetParameter')).toBe(3);
  });

  it('ParameterNotFound is not cached by default', async () => {
    const { client } = await cached(SSMClient, ssm, { GetParameterCommand: { ttlSeconds: 60 } }, { encryption });
    for (let i = 0; i < 2; i += 1) await expect(client.send(new GetParameterCommand({ Name: '/missing' }))).rejects.toBeInstanceOf(ParameterNotFound);
    expect(ssm.count('GetParameter')).toBe(2);
  });

  it('GetSecretValue: refused at configuration without encryption; cached with it', async () => {
    const { cache } = await db.newCache();
    expect(() => cacheAwsClient(new SecretsManagerClient(localAwsConfig(ssm.endpoint)), { cache, commands: { GetSecretValueCommand: { ttlSeconds: 60 } } })).toThrow(
      /GetSecretValueCommand: every answer holds SecretString, which the AWS SDK marks sensitive.*configure the cache's encryption, or set allowPlaintext: true/,
    );
    const { client } = await cached(SecretsManagerClient, ssm, { GetSecretValueCommand: { ttlSeconds: 60 } }, { encryption });
    await client.send(new GetSecretValueCommand({ SecretId: 'db' }));
    const hit = await client.send(new GetSecretValueCommand({ SecretId: 'db' }));
    expect(hit).toMatchObject({ SecretString: '{"password":"p"}', Name: 'db', $metadata: { cache: 'hit' } });
    expect(hit.CreatedDate).toEqual(new Date(CREATED * 1000));
    expect(ssm.count('GetSecretValue')).toBe(1);
  });
});

describe('cacheAwsClient with the real DynamoDB client', () => {
  it("caches the application's GetItem on the very client the cache uses, and never the cache's own requests", async () => {
    const client = new DynamoDBClient(localClientConfig(db.endpoint));
    const { cache } = await db.newCache({ client });
    cacheAwsClient(client, { cache, commands: { GetItemCommand: { ttlSeconds: 60 } } });
    await client.send(new CreateTableCommand({ TableName: 'users', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }));
    await untilActive(client, 'users');
    await client.send(new PutItemCommand({ TableName: 'users', Item: { pk: { S: 'ada' }, name: { S: 'Ada' } } }));
    const read = () => client.send(new GetItemCommand({ TableName: 'users', Key: { pk: { S: 'ada' } } }));
    const [first, second] = [await read(), await read()];
    expect([awsCacheStatusOf(first), awsCacheStatusOf(second)]).toEqual(['miss', 'hit']);
    expect(second.Item).toEqual({ pk: { S: 'ada' }, name: { S: 'Ada' } });
    const consistent = await client.send(new GetItemCommand({ TableName: 'users', Key: { pk: { S: 'ada' } }, ConsistentRead: true }));
    expect(awsCacheStatusOf(consistent)).toBe('bypass');
    // The cache's own GetItem went through the same middleware untouched.
    expect(await cache.getOrSet('plain', () => 'value', { ttlSeconds: 60 })).toBe('value');
    expect(cache.stats().errors).toBe(0);
    client.destroy();
  });

  it('a BatchGetItem with ConsistentRead on one of its tables reaches DynamoDB: the order is PAID, not the cached PENDING', async () => {
    const client = new DynamoDBClient(localClientConfig(db.endpoint));
    const { cache } = await db.newCache();
    cacheAwsClient(client, { cache, commands: { BatchGetItemCommand: { ttlSeconds: 60 } } });
    const orders = await db.newTable('order');
    const status = async (ConsistentRead?: boolean) => {
      const output = await client.send(new BatchGetItemCommand({ RequestItems: { [orders]: { Keys: [{ order: { S: 'o-1' } }], ...(ConsistentRead === undefined ? {} : { ConsistentRead }) } } }));
      return [output.Responses![orders]![0]!.status!.S, awsCacheStatusOf(output)];
    };
    await db.client.send(new PutItemCommand({ TableName: orders, Item: { order: { S: 'o-1' }, status: { S: 'PENDING' } } }));
    expect([await status(), await status()]).toEqual([
      ['PENDING', 'miss'],
      ['PENDING', 'hit'],
    ]);
    await db.client.send(new PutItemCommand({ TableName: orders, Item: { order: { S: 'o-1' }, status: { S: 'PAID' } } }));
    expect(await status()).toEqual(['PENDING', 'hit']); // eventually consistent: the cache may answer
    expect(await status(true)).toEqual(['PAID', 'bypass']);
    client.destroy();
  });
});

describe('cacheAwsClient with the real STS client', () => {
  it("GetCallerIdentity is never shared across principals: each caller gets its own credentials' identity, under one principal label too", async () => {
    const sts = await StsServer.start({
      'ASIA-TENANT-A': 'arn:aws:sts::111111111111:assumed-role/tenant-a/session-1',
      'ASIA-TENANT-A-2': 'arn:aws:sts::111111111111:assumed-role/tenant-a/session-2',
      'ASIA-TENANT-B': 'arn:aws:sts::222222222222:assumed-role/tenant-b/session-1',
    });
    try {
      const { cache } = await db.newCache();
      const client = (accessKeyId: string, principal?: string) =>
        cacheAwsClient(new STSClient({ endpoint: sts.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId, secretAccessKey: 'secret', sessionToken: `token-${accessKeyId}` } }), {
          cache,
          commands: { GetCallerIdentityCommand: { ttlSeconds: 60 } },
          ...(principal === undefined ? {} : { principal }),
        });
      const whoAmI = async (caller: STSClient) => {
        const output = await caller.send(new GetCallerIdentityCommand({}));
        return [output.Arn, awsCacheStatusOf(output)];
      };
      const [a, b] = [client('ASIA-TENANT-A'), client('ASIA-TENANT-B')];
      expect(await whoAmI(a)).toEqual(['arn:aws:sts::111111111111:assumed-role/tenant-a/session-1', 'miss']);
      expect(await whoAmI(b)).toEqual(['arn:aws:sts::222222222222:assumed-role/tenant-b/session-1', 'miss']);
      expect(await whoAmI(a)).toEqual(['arn:aws:sts::111111111111:assumed-role/tenant-a/session-1', 'hit']);
      // Two sessions of one tenant's role, under the tenant's label: each session is its own identity.
      expect(await whoAmI(client('ASIA-TENANT-A', 'tenant-a'))).toEqual(['arn:aws:sts::111111111111:assumed-role/tenant-a/session-1', 'hit']);
      expect(await whoAmI(client('ASIA-TENANT-A-2', 'tenant-a'))).toEqual(['arn:aws:sts::111111111111:assumed-role/tenant-a/session-2', 'miss']);
      expect(sts.calls).toBe(3);
    } finally {
      await sts.close();
    }
  });
});
