import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { cacheAwsClient, type AwsClientLike } from '../src/aws-clients/cache-aws-client.ts';
import { principalOf, type PrincipalRule } from '../src/aws-clients/principal.ts';
import { DynamoCache } from '../src/cache.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const plain: PrincipalRule = { label: undefined, exact: false, shared: false };
const lambda = { AWS_LAMBDA_FUNCTION_NAME: 'orders', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'ASIA-ENV', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 'env-token' };

describe('the principal of a call', () => {
  it("is the Lambda function for the function's own credentials, whichever environment's they are", () => {
    expect(principalOf({ accessKeyId: 'ASIA-ENV', sessionToken: 'env-token' }, plain, lambda)).toEqual({ kind: 'function', id: 'function:eu-west-1:orders' });
    const other = { ...lambda, AWS_ACCESS_KEY_ID: 'ASIA-ENV-2', AWS_SESSION_TOKEN: 'env-token-2' };
    expect(principalOf({ accessKeyId: 'ASIA-ENV-2', sessionToken: 'env-token-2' }, plain, other).id).toBe('function:eu-west-1:orders');
    // Another function, or the same keys outside Lambda, is another principal.
    expect(principalOf({ accessKeyId: 'ASIA-ENV', sessionToken: 'env-token' }, plain, { ...lambda, AWS_LAMBDA_FUNCTION_NAME: 'billing' }).id).toBe('function:eu-west-1:billing');
    expect(principalOf({ accessKeyId: 'ASIA-ENV', sessionToken: 'env-token' }, plain, { ...lambda, AWS_LAMBDA_FUNCTION_NAME: undefined }).kind).toBe('session');
  });

  it('is the session for other temporary credentials, the access key for long-term ones, and anonymous for an unsigned call', () => {
    expect(principalOf({ accessKeyId: 'ASIA-TENANT', sessionToken: 'tenant-token' }, plain, lambda)).toEqual({ kind: 'session', id: 'session:ASIA-TENANT' });
    // The function's key with another session token is not the function's credentials.
    expect(principalOf({ accessKeyId: 'ASIA-ENV', sessionToken: 'forged' }, plain, lambda).kind).toBe('session');
    expect(principalOf({ accessKeyId: 'AKIA-USER' }, plain, lambda)).toEqual({ kind: 'access-key', id: 'access-key:AKIA-USER' });
    expect(principalOf({ token: 'bearer-token' }, plain, {})).toEqual({ kind: 'session', id: 'session:bearer-token' });
    expect(principalOf({}, plain, lambda)).toEqual({ kind: 'anonymous', id: 'anonymous' });
    expect(principalOf(undefined, plain, lambda).kind).toBe('anonymous');
  });

  it('is the label when one is configured, "shared" for a command shared on purpose, and the exact credentials for identity commands', () => {
    const session = { accessKeyId: 'ASIA-TENANT', sessionToken: 'tenant-token' };
    expect(principalOf(session, { ...plain, label: 'tenant-a' }, lambda)).toEqual({ kind: 'label', id: 'label:tenant-a' });
    expect(principalOf(session, { ...plain, shared: true }, lambda)).toEqual({ kind: 'shared', id: 'shared' });
    expect(principalOf(session, { label: 'tenant-a', exact: true, shared: false }, lambda)).toEqual({ kind: 'credentials', id: 'credentials:ASIA-TENANT' });
    expect(principalOf({ accessKeyId: 'ASIA-ENV', sessionToken: 'env-token' }, { ...plain, exact: true }, lambda).id).toBe('credentials:ASIA-ENV');
    expect(principalOf({}, { ...plain, exact: true }, lambda).kind).toBe('anonymous');
  });
});

describe('where the middleware goes in the client stack', () => {
  const cache = new DynamoCache({ tableName: 'config-only', clientConfig: localAwsConfig('http://127.0.0.1:9'), logger: new RecordingLogger() });

  /** A client that records where middleware is put: `endpointProvider` in its config or not. */
  const recordingClient = (config: object) => {
    const placements: object[] = [];
    const client: AwsClientLike = { config, middlewareStack: { add: (_m, options) => placements.push(options), addRelativeTo: (_m, options) => placements.push(options) } };
    return { client, placements };
  };

  it('right after the SDK resolved the endpoint (and credentials) of the call, on a client with endpoint rule sets', () => {
    const { client, placements } = recordingClient({ endpointProvider: () => ({}) });
    cacheAwsClient(client, { cache, commands: { GetObjectCommand: { ttlSeconds: 60 } } });
    expect(placements).toEqual([expect.objectContaining({ relation: 'after', toMiddleware: 'endpointV2Middleware', name: 'dynamoCacheAwsClient' })]);
    // A real client's own stack has that middleware, for every command.
    expect(typeof (new S3Client({}).config as { endpointProvider?: unknown }).endpointProvider).toBe('function');
  });

  it('first of all on an older client, which resolves endpoint and credentials from its config alone', () => {
    const { client, placements } = recordingClient({ endpoint: async () => ({ protocol: 'https:', hostname: 's3.example.com', path: '/' }) });
    cacheAwsClient(client, { cache, commands: { GetObjectCommand: { ttlSeconds: 60 } } });
    expect(placements).toEqual([expect.objectContaining({ step: 'initialize', priority: 'high', name: 'dynamoCacheAwsClient' })]);
  });
});
