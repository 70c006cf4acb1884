import { AdminGetUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { cacheAwsClient, type CachedCommandOptions } from '../src/aws-clients/cache-aws-client.ts';
import { wantsLiveAnswer, redactedMembers, refusalOf, secretInputReason } from '../src/aws-clients/command-rules.ts';
import { isThrottlingOrTransient, notFoundError } from '../src/aws-clients/service-errors.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { RecordingLogger } from './support/recording-logger.ts';

/** A cache that is never reached: configuration is checked before any call. */
const cache = new DynamoCache({ tableName: 'config-only', clientConfig: localAwsConfig('http://127.0.0.1:9'), logger: new RecordingLogger() });
const configure = (commands: Record<string, CachedCommandOptions>) => cacheAwsClient(new S3Client(localAwsConfig('http://127.0.0.1:9')), { cache, commands });

describe('which commands may be cached', () => {
  it.each([
    'GetObjectCommand',
    'HeadObjectCommand',
    'ListObjectsV2Command',
    'AdminGetUserCommand',
    'DescribeUserPoolClientCommand',
    'GetParameterCommand',
    'GetParametersByPathCommand',
    'GetItemCommand',
    'BatchGetItemCommand',
    'QueryCommand',
    'ScanCommand',
    'GetCallerIdentityCommand',
  ])('%s is a plain read', (name) => {
    expect(refusalOf(name)).toBeUndefined();
    expect(() => configure({ [name]: { ttlSeconds: 60 } })).not.toThrow();
  });

  it.each(['PutObjectCommand', 'DeleteObjectCommand', 'AdminSetUserPasswordCommand', 'AdminInitiateAuthCommand', 'InitiateAuthCommand', 'AssumeRoleCommand', 'UpdateItemCommand', 'GetterCommand', 'AdminCreateUserCommand'])(
    'a mutating command in commands is refused at configuration: %s',
    (name) => {
      expect(() => configure({ [name]: { ttlSeconds: 60 } })).toThrow(InvalidOptionsError);
      expect(() => configure({ [name]: { ttlSeconds: 60 } })).toThrow(new RegExp(`commands.${name}: ${name} is not a read`));
    },
  );

  it.each([
    'GetIdCommand',
    'GetCredentialsForIdentityCommand',
    'GetOpenIdTokenCommand',
    'GetSessionTokenCommand',
    'GetFederationTokenCommand',
    'GetAuthorizationTokenCommand',
    'GetClusterCredentialsCommand',
    'GetRoleCredentialsCommand',
    'GetRandomPasswordCommand',
    'GetShardIteratorCommand',
    'GetTokensFromRefreshTokenCommand',
  ])('a read that mints credentials or tokens is refused at configuration: %s', (name) => {
    expect(() => configure({ [name]: { ttlSeconds: 60 } })).toThrow(/mints credentials, tokens or one-time values/);
  });

  it('dangerouslyAllowUnsafeCommand lets a refused command be cached, on purpose', () => {
    const client = cacheAwsClient(new STSClient(localAwsConfig('http://127.0.0.1:9')), { cache, commands: { GetSessionTokenCommand: { ttlSeconds: 60, dangerouslyAllowUnsafeCommand: true } } });
    expect(client).toBeInstanceOf(STSClient);
  });

  it('bad options are refused with InvalidOptionsError naming the command and the option', () => {
    expect(() => configure({ GetObjectCommand: {} as CachedCommandOptions })).toThrow(/commands.GetObjectCommand.ttlSeconds must be a finite number/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 0 } })).toThrow(/ttlSeconds must be more than zero/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, staleIfErrorSeconds: -1 } })).toThrow(/staleIfErrorSeconds must be zero or more/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, ttl: 5 } as CachedCommandOptions })).toThrow(/unknown option ttl/);
    expect(() => configure({ GetObject: { ttlSeconds: 60 } })).toThrow(/named by their class, as in GetObjectCommand/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, maxBodyBytes: 0.5 } })).toThrow(/maxBodyBytes must be an integer/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, lease: { waitMs: -1 } } })).toThrow(/lease.waitMs must be zero or more/);
    expect(() => configure({})).toThrow(/must name at least one command/);
    expect(() => cacheAwsClient({} as S3Client, { cache, commands: { GetObjectCommand: { ttlSeconds: 1 } } })).toThrow(/needs an AWS SDK v3 client/);
    expect(() => cacheAwsClient(new S3Client({}), { cache: {} as DynamoCache, commands: { GetObjectCommand: { ttlSeconds: 1 } } })).toThrow(/must be a DynamoCache/);
  });

  it('known secret reads: SSM WithDecryption; reads that want a live answer: conditional and consistent reads', () => {
    expect(secretInputReason('GetParameterCommand', { Name: 'x', WithDecryption: true })).toBe('WithDecryption');
    expect(secretInputReason('GetParameterCommand', { Name: 'x', WithDecryption: false })).toBeUndefined();
    expect(secretInputReason('GetObjectCommand', { WithDecryption: true })).toBeUndefined();
    expect(wantsLiveAnswer({ Bucket: 'b', Key: 'k', IfNoneMatch: '"e"' })).toBe(true);
    expect(wantsLiveAnswer({ Bucket: 'b', Key: 'k', IfModifiedSince: new Date() })).toBe(true);
    expect(wantsLiveAnswer({ Bucket: 'b', Key: 'k', Range: 'bytes=0-1' })).toBe(false);
    expect(wantsLiveAnswer({ TableName: 't', Key: {}, ConsistentRead: true })).toBe(true);
    expect(wantsLiveAnswer({ TableName: 't', Key: {}, ConsistentRead: false })).toBe(false);
  });

  it("the SDK's own log filter tells which members are secret, down to list members", async () => {
    // The filters the SDK hands its middleware, captured from a real call that never leaves the process.
    const client = new CognitoIdentityProviderClient(localAwsConfig('http://127.0.0.1:9'));
    const filters: { input?: unknown; output?: unknown } = {};
    client.middlewareStack.add(
      (_next, context) => async () => {
        filters.input = context.inputFilterSensitiveLog;
        filters.output = context.outputFilterSensitiveLog;
        return { output: { $metadata: {} }, response: undefined };
      },
      { step: 'initialize', name: 'capture' },
    );
    await client.send(new AdminGetUserCommand({ UserPoolId: 'pool', Username: 'ada' }));
    const output = { Username: 'ada', UserAttributes: [{ Name: 'email', Value: 'ada@example.com' }, { Name: 'sub', Value: '1' }], Enabled: true, UserCreateDate: new Date() };
    expect(redactedMembers(output, filters.output)).toEqual(['Username', 'UserAttributes[].Value']);
    expect(redactedMembers({ UserPoolId: 'pool', Username: 'ada' }, filters.input)).toEqual(['Username']);
    expect(redactedMembers({ UserPoolId: 'pool' }, filters.input)).toEqual([]);
    expect(redactedMembers(output, undefined)).toEqual([]);
    expect(
      redactedMembers(output, () => {
        throw new Error('filter bug');
      }),
    ).toEqual(['(the SDK log filter failed)']);
  });
});

describe('the options of cacheAwsClient', () => {
  it('refuses an unknown option, with the one meant', () => {
    const client = new S3Client(localAwsConfig('http://127.0.0.1:9'));
    expect(() => cacheAwsClient(client, { cache, command: { GetObjectCommand: { ttlSeconds: 60 } } } as never)).toThrow(/Unknown option "command" in cacheAwsClient options; did you mean "commands"\?/);
  });

  it('takes a cache from another copy of the package (the CommonJS build) by its brand, and refuses anything else', () => {
    const cjs = createRequire(import.meta.url)('../dist/index.cjs') as typeof import('../src/index.ts');
    const other = new cjs.DynamoCache({ tableName: 'config-only', clientConfig: localAwsConfig('http://127.0.0.1:9'), logger: new RecordingLogger() });
    expect(other instanceof DynamoCache).toBe(false); // what an instanceof check refused
    const client = new S3Client(localAwsConfig('http://127.0.0.1:9'));
    expect(() => cacheAwsClient(client, { cache: other, commands: { GetObjectCommand: { ttlSeconds: 60 } } })).not.toThrow();
    expect(() => cacheAwsClient(client, { cache: { acquire() {} } as never, commands: { GetObjectCommand: { ttlSeconds: 60 } } })).toThrow(/options.cache must be a DynamoCache/);
  });
});

describe('which errors a stale value may stand in for', () => {
  const serviceError = (name: string, httpStatusCode: number, extra: object = {}) => Object.assign(new Error(name), { name, $fault: 'client', $metadata: { httpStatusCode }, ...extra });

  it.each([
    ['ThrottlingException', 400],
    ['TooManyRequestsException', 400],
    ['SlowDown', 503],
    ['RequestLimitExceeded', 400],
    ['InternalErrorException', 500],
    ['SomethingNew', 429],
    ['SomethingElse', 503],
  ])('%s (HTTP %i) is throttling or transient', (name, status) => {
    expect(isThrottlingOrTransient(serviceError(name, status))).toBe(true);
  });

  it('network errors and timeouts are transient; client errors and aborts are not', () => {
    expect(isThrottlingOrTransient(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isThrottlingOrTransient(Object.assign(new Error('t'), { name: 'TimeoutError' }))).toBe(true);
    expect(isThrottlingOrTransient(new Error('wrapped', { cause: serviceError('SlowDown', 503) }))).toBe(true);
    expect(isThrottlingOrTransient(serviceError('AccessDenied', 403))).toBe(false);
    expect(isThrottlingOrTransient(serviceError('NotAuthorizedException', 400))).toBe(false);
    expect(isThrottlingOrTransient(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ECONNRESET' }))).toBe(false);
    expect(isThrottlingOrTransient('SlowDown')).toBe(false);
  });

  it('"not found" errors are known by name or by HTTP 404; 304 and 412 are not', () => {
    expect(notFoundError(serviceError('ResourceNotFoundException', 400))).toMatchObject({ name: 'ResourceNotFoundException', httpStatusCode: 400 });
    expect(notFoundError(serviceError('NoSuchBucket', 404))).toMatchObject({ name: 'NoSuchBucket', httpStatusCode: 404 });
    expect(notFoundError(serviceError('NotModified', 304))).toBeUndefined();
    expect(notFoundError(serviceError('PreconditionFailed', 412))).toBeUndefined();
    expect(notFoundError('NoSuchKey')).toBeUndefined();
  });
});
