import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { cacheAwsClient, type CachedCommandOptions } from '../src/aws-clients/cache-aws-client.ts';
import { operationOf, refusalOf, wantsLiveAnswer } from '../src/aws-clients/command-rules.ts';
import { SENSITIVE_ANSWERS, redactedMembers, sensitiveAnswerOf } from '../src/aws-clients/sensitive-members.ts';
import { isThrottlingOrTransient, notFoundError } from '../src/aws-clients/service-errors.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { installedCommands, sensitiveOutputPaths } from './support/installed-sdk.ts';
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
    // Words that read like the refused ones, in reads that mint nothing.
    'GetQueueUrlCommand',
    'GetFunctionUrlConfigCommand',
    'GetPublicAccessBlockCommand',
    'GetAccessPointCommand',
    'GetAccessKeyInfoCommand',
    'GetAccountPasswordPolicyCommand',
    'GetCredentialReportCommand',
    'ListWebAuthnCredentialsCommand',
    'DescribeAccessCommand',
    'GetCodeSigningConfigCommand',
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
    // The reads an outside review found cached (793bc00): credentials, signed URLs, one-time codes, iterators, side effects.
    ['GetDataAccessCommand', /grants temporary access/],
    ['GetComputeAccessCommand', /grants temporary access/],
    ['GetInstanceAccessDetailsCommand', /grants temporary access/],
    ['GetDashboardEmbedUrlCommand', /mints a presigned, signed or session URL/],
    ['GetPersistentAppUIPresignedURLCommand', /mints a presigned, signed or session URL/],
    ['GetOnClusterAppUIPresignedURLCommand', /mints a presigned, signed or session URL/],
    ['GetIceServerConfigCommand', /mints TURN server credentials/],
    ['GetParametersForImportCommand', /mints a single-use import token/],
    ['GetUserAttributeVerificationCodeCommand', /sends or mints a one-time code/],
    ['GetRecordsCommand', /single-use iterator/],
    // More of the same kinds, in other services.
    ['GetSessionEmbedUrlCommand', /presigned, signed or session URL/],
    ['GetHLSStreamingSessionURLCommand', /presigned, signed or session URL/],
    ['GetDASHStreamingSessionURLCommand', /presigned, signed or session URL/],
    ['GetDownloadUrlForLayerCommand', /presigned, signed or session URL/],
    ['GetGameSessionLogUrlCommand', /presigned, signed or session URL/],
    ['GetArtifactUrlCommand', /presigned, signed or session URL/],
    ['GetDeployablePatchSnapshotForInstanceCommand', /presigned download URL/],
    ['GetInstanceAccessCommand', /grants temporary access/],
    ['GetJobUnlockCodeCommand', /one-time code/],
    ['GetShardIteratorCommand', /single-use iterator/],
    ['GetIdCommand', /creates the Cognito identity/],
    ['GetCredentialsForIdentityCommand', /mints credentials, tokens or passwords/],
    ['GetOpenIdTokenCommand', /mints credentials/],
    ['GetSessionTokenCommand', /mints credentials/],
    ['GetFederationTokenCommand', /mints credentials/],
    ['GetWebIdentityTokenCommand', /mints credentials/],
    ['GetDelegatedAccessTokenCommand', /mints credentials/],
    ['GetAuthorizationTokenCommand', /mints credentials/],
    ['GetClusterCredentialsCommand', /mints credentials/],
    ['GetClusterCredentialsWithIAMCommand', /mints credentials/],
    ['GetTemporaryGlueTableCredentialsCommand', /mints credentials/],
    ['GetRoleCredentialsCommand', /mints credentials/],
    ['GetRandomPasswordCommand', /mints credentials/],
    ['GetPasswordDataCommand', /mints credentials/],
    ['GetRelationalDatabaseMasterUserPasswordCommand', /mints credentials/],
    ['GetTokensFromRefreshTokenCommand', /mints credentials/],
    ['GetClientTokenCommand', /mints credentials/],
    ['GetAccessTokenCommand', /mints credentials/],
    ['GetComputeAuthTokenCommand', /mints credentials/],
  ])('a read whose answer is minted for the call, single-use or a side effect is refused at configuration: %s', (name, why) => {
    expect(refusalOf(name)).toMatch(why);
    expect(() => configure({ [name]: { ttlSeconds: 60 } })).toThrow(InvalidOptionsError);
    expect(() => configure({ [name]: { ttlSeconds: 60 } })).toThrow(new RegExp(`commands.${name}: ${name} .*: caching it would share it between callers`));
  });

  it('dangerouslyAllowUnsafeCommand lets a refused command be cached, on purpose', () => {
    const client = cacheAwsClient(new STSClient(localAwsConfig('http://127.0.0.1:9')), { cache, commands: { GetSessionTokenCommand: { ttlSeconds: 60, dangerouslyAllowUnsafeCommand: true } } });
    expect(client).toBeInstanceOf(STSClient);
  });

  it('TransactGetItems is strongly consistent: refused, dangerouslyAllowUnsafeCommand or not', () => {
    const dynamo = new DynamoDBClient(localAwsConfig('http://127.0.0.1:9'));
    for (const entry of [{ ttlSeconds: 60 }, { ttlSeconds: 60, dangerouslyAllowUnsafeCommand: true }]) {
      expect(() => cacheAwsClient(dynamo, { cache, commands: { TransactGetItemsCommand: entry } })).toThrow(/TransactGetItemsCommand is a strongly consistent read: it always goes to the service/);
    }
  });

  it("commands that answer about the caller's own credentials take no key function and are never shared across principals", () => {
    const sts = new STSClient(localAwsConfig('http://127.0.0.1:9'));
    const cognito = new CognitoIdentityProviderClient(localAwsConfig('http://127.0.0.1:9'));
    expect(() => cacheAwsClient(sts, { cache, commands: { GetCallerIdentityCommand: { ttlSeconds: 60 } } })).not.toThrow();
    expect(() => cacheAwsClient(sts, { cache, commands: { GetCallerIdentityCommand: { ttlSeconds: 60, shareAcrossPrincipals: true } } })).toThrow(
      /GetCallerIdentityCommand answers about the caller's own credentials.*shareAcrossPrincipals would hand one caller's identity to another/,
    );
    expect(() => cacheAwsClient(cognito, { cache, commands: { GetUserCommand: { ttlSeconds: 60, allowPlaintext: true, key: () => 'me' } } })).toThrow(/GetUserCommand answers about the caller's own credentials.*a key function/);
    // Elsewhere both are plain options.
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, shareAcrossPrincipals: true, key: (input: { Key: string }) => input.Key } })).not.toThrow();
  });

  it('bad options are refused with InvalidOptionsError naming the command and the option', () => {
    expect(() => configure({ GetObjectCommand: {} as CachedCommandOptions })).toThrow(/commands.GetObjectCommand.ttlSeconds must be a finite number/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 0 } })).toThrow(/ttlSeconds must be more than zero/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, staleIfErrorSeconds: -1 } })).toThrow(/staleIfErrorSeconds must be zero or more/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, ttl: 5 } as CachedCommandOptions })).toThrow(/unknown option ttl/);
    expect(() => configure({ GetObject: { ttlSeconds: 60 } })).toThrow(/named by their class, as in GetObjectCommand/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, maxBodyBytes: 0.5 } })).toThrow(/maxBodyBytes must be an integer/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, lease: { waitMs: -1 } } })).toThrow(/lease.waitMs must be zero or more/);
    expect(() => configure({ GetObjectCommand: { ttlSeconds: 60, shareAcrossPrincipals: 'yes' as never } })).toThrow(/shareAcrossPrincipals must be true or false/);
    expect(() => configure({})).toThrow(/must name at least one command/);
    expect(() => cacheAwsClient({} as S3Client, { cache, commands: { GetObjectCommand: { ttlSeconds: 1 } } })).toThrow(/needs an AWS SDK v3 client/);
    expect(() => cacheAwsClient(new S3Client({}), { cache: {} as DynamoCache, commands: { GetObjectCommand: { ttlSeconds: 1 } } })).toThrow(/must be a DynamoCache/);
    expect(() => cacheAwsClient(new S3Client({}), { cache, principal: '', commands: { GetObjectCommand: { ttlSeconds: 1 } } })).toThrow(/options.principal must be a non-empty string/);
  });

  it('reads that want a live answer: conditional and consistent reads, at every level of a batch', () => {
    expect(wantsLiveAnswer({ Bucket: 'b', Key: 'k', IfNoneMatch: '"e"' })).toBe(true);
    expect(wantsLiveAnswer({ Bucket: 'b', Key: 'k', IfModifiedSince: new Date() })).toBe(true);
    expect(wantsLiveAnswer({ Bucket: 'b', Key: 'k', Range: 'bytes=0-1' })).toBe(false);
    expect(wantsLiveAnswer({ TableName: 't', Key: {}, ConsistentRead: true })).toBe(true);
    expect(wantsLiveAnswer({ TableName: 't', Key: {}, ConsistentRead: false })).toBe(false);
    expect(wantsLiveAnswer({ RequestItems: { a: { Keys: [] }, b: { Keys: [], ConsistentRead: true } } })).toBe(true);
    expect(wantsLiveAnswer({ RequestItems: { a: { Keys: [], ConsistentRead: false } } })).toBe(false);
  });

  it("the SDK's own log filter tells which members are secret, down to list members", async () => {
    const filters = await logFiltersOf('@aws-sdk/client-cognito-identity-provider', 'AdminGetUserCommand');
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

describe('the refusal rules against the operations of the installed AWS SDK clients', () => {
  it('refuse exactly these of their reads, and no plain read', async () => {
    const refused = (await installedCommands()).flatMap(({ serviceId, name }) => {
      const why = refusalOf(name, operationOf(serviceId, name));
      return why === undefined || / is not a read/.test(why) ? [] : [`${serviceId} ${name}`];
    });
    expect(refused.sort()).toEqual([
      'Cognito Identity Provider GetClientTokenCommand',
      'Cognito Identity Provider GetTokensFromRefreshTokenCommand',
      'Cognito Identity Provider GetUserAttributeVerificationCodeCommand',
      'SSM GetAccessTokenCommand',
      'SSM GetDeployablePatchSnapshotForInstanceCommand',
      'STS GetDelegatedAccessTokenCommand',
      'STS GetFederationTokenCommand',
      'STS GetSessionTokenCommand',
      'STS GetWebIdentityTokenCommand',
      'Secrets Manager GetRandomPasswordCommand',
    ]);
  });

  it('refuse every read whose output the SDK model says carries credentials (keys, tokens, passwords)', async () => {
    const commands = await installedCommands();
    const minting = commands.filter((command) => sensitiveOutputPaths(command).some((path) => /(?:Token|SecretAccessKey|Password|Credentials?)(?:\.|$)/.test(path)));
    expect(minting.length).toBeGreaterThanOrEqual(8); // the check is not vacuous
    for (const { serviceId, name } of minting) expect(refusalOf(name, operationOf(serviceId, name)), `${serviceId} ${name}`).toBeDefined();
  });
});

describe('commands whose every answer the SDK marks sensitive', () => {
  const cognito = new CognitoIdentityProviderClient(localAwsConfig('http://127.0.0.1:9'));

  it('AdminGetUserCommand on a cache without encryption is refused at configuration, naming encryption and allowPlaintext', () => {
    const attempt = () => cacheAwsClient(cognito, { cache, commands: { AdminGetUserCommand: { ttlSeconds: 60 } } });
    expect(attempt).toThrow(InvalidOptionsError);
    expect(attempt).toThrow(
      "commands.AdminGetUserCommand: every answer holds Username, which the AWS SDK marks sensitive, so none could be stored in clear; configure the cache's encryption, or set allowPlaintext: true to store it in clear",
    );
    expect(() => cacheAwsClient(cognito, { cache, commands: { AdminGetUserCommand: { ttlSeconds: 60, allowPlaintext: true } } })).not.toThrow();
    const encrypted = new DynamoCache({ tableName: 'config-only', clientConfig: localAwsConfig('http://127.0.0.1:9'), logger: new RecordingLogger(), encryption: { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' } });
    expect(() => cacheAwsClient(cognito, { cache: encrypted, commands: { AdminGetUserCommand: { ttlSeconds: 60 } } })).not.toThrow();
    // The rule is the service's: IAM's GetUser answers nothing the SDK marks sensitive.
    expect(sensitiveAnswerOf(operationOf('IAM', 'GetUserCommand'))).toBeUndefined();
  });

  it("each listed member is one the installed client's own log filter redacts", async () => {
    const checked: string[] = [];
    for (const [service, members] of Object.entries(SENSITIVE_ANSWERS)) {
      const command = (await installedCommands()).filter((candidate) => candidate.serviceId === service);
      for (const [operation, path] of Object.entries(members)) {
        const installed = command.find((candidate) => candidate.name === `${operation}Command`);
        expect(installed, `${service} ${operation}`).toBeDefined();
        const filters = await logFiltersOf(installed!.pkg, installed!.name);
        expect(redactedMembers(sampleAt(path), filters.output), `${service} ${operation}`).toEqual([path]);
        checked.push(operation);
      }
    }
    expect(checked.length).toBe(12);
  });

  it('no other read of the installed clients has a sensitive member on every answer (required by the model)', async () => {
    const required = (await installedCommands()).filter((command) => sensitiveOutputPaths(command, true).length > 0);
    expect(required.map((command) => command.name)).toContain('AdminGetUserCommand'); // the check is not vacuous
    for (const { serviceId, name } of required) {
      const operation = operationOf(serviceId, name);
      expect(sensitiveAnswerOf(operation) ?? refusalOf(name, operation), `${serviceId} ${name}`).toBeDefined();
    }
  });
});

/** The log filters the SDK hands its middleware for one command, captured from a call that never leaves the process. */
async function logFiltersOf(pkg: string, commandName: string): Promise<{ input?: unknown; output?: unknown }> {
  const module = (await import(pkg)) as Record<string, new (arg: object) => unknown>;
  const Client = Object.entries(module).find(([name]) => /^[A-Z]\w*Client$/.test(name))![1] as unknown as new (config: object) => {
    middlewareStack: { add(middleware: unknown, options: object): void };
    send(command: unknown): Promise<unknown>;
  };
  const client = new Client(localAwsConfig('http://127.0.0.1:9'));
  const filters: { input?: unknown; output?: unknown } = {};
  client.middlewareStack.add(
    (_next: unknown, context: { inputFilterSensitiveLog?: unknown; outputFilterSensitiveLog?: unknown }) => async () => {
      filters.input = context.inputFilterSensitiveLog;
      filters.output = context.outputFilterSensitiveLog;
      return { output: { $metadata: {} }, response: undefined };
    },
    { step: 'initialize', name: 'capture', priority: 'high' },
  );
  await client.send(new module[commandName]!({}));
  return filters;
}

/** An output holding a string at `path` (`Parameters[].Value` is `{ Parameters: [{ Value: 'x' }] }`). */
function sampleAt(path: string): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  const list = head!.endsWith('[]');
  const name = list ? head!.slice(0, -2) : head!;
  const value = rest.length === 0 ? 'sensitive-value' : sampleAt(rest.join('.'));
  return { [name]: list ? [value] : value };
}

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

describe('reads of one service whose names tell nothing (an outside review): refused for that service', () => {
  /** A v3 client of `serviceId` as cacheAwsClient sees it at configuration (these client packages are not installed). */
  const clientOf = (serviceId: string) => ({ middlewareStack: { add() {}, addRelativeTo() {} }, config: { serviceId } });

  it.each([
    ['Lambda', 'GetFunctionCommand'], // Code.Location: a presigned URL valid for 10 minutes
    ['Lambda', 'GetLayerVersionCommand'], // Content.Location, the same
    ['Lambda', 'GetLayerVersionByArnCommand'],
    ['SFN', 'GetActivityTaskCommand'], // dequeues a task and its task token
    ['AppConfigData', 'GetLatestConfigurationCommand'], // a single-use configuration token
    ['Connect', 'GetAttachedFileCommand'], // a presigned download URL
  ])('%s %s', (serviceId, command) => {
    expect(() => cacheAwsClient(clientOf(serviceId), { cache, commands: { [command]: { ttlSeconds: 3600 } } })).toThrow(InvalidOptionsError);
    expect(() => cacheAwsClient(clientOf(serviceId), { cache, commands: { [command]: { ttlSeconds: 60, dangerouslyAllowUnsafeCommand: true } } })).not.toThrow();
  });

  it('another service may have a plain read of the same name', () => {
    expect(refusalOf('GetFunctionCommand', operationOf('CloudFront', 'GetFunctionCommand'))).toBeUndefined();
    expect(refusalOf('GetFunctionCommand', operationOf(undefined, 'GetFunctionCommand'))).toMatch(/presigned/);
  });
});
