/**
 * `npm run demo`: the original story, replayed. A fleet of Lambda execution environments needs an access
 * token on every invocation; the token endpoint answers 429 above a fixed rate. The same fleet runs with
 * no cache, with a port of the original Python `CacheService`, and with `dynamo-cache` without and with its
 * cross-environment lease, and a table shows what each costs the upstream and the callers.
 *
 * Then the two upstreams that throttled the original service, side by side without and with the cache: S3,
 * read with the real AWS SDK client from a local S3-compatible endpoint that answers `503 SlowDown` above a
 * fixed rate (cached with `cacheAwsClient`), and an OAuth 2.0 client credentials token from a local token
 * endpoint that answers 429 above a fixed rate (shared with `clientCredentialsToken`).
 *
 * DynamoDB: an embedded dynalite on 127.0.0.1 by default. Set `DYNAMO_CACHE_TABLE` (a table with a String
 * partition key `id`) and the usual AWS settings (`AWS_REGION`, credentials, or `AWS_ENDPOINT_URL_DYNAMODB`)
 * to run against real DynamoDB. `DEMO_ENVIRONMENTS` and `DEMO_SECONDS` size the run.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { randomBytes } from 'node:crypto';
import { OriginalCacheService } from '../../bench/baselines/original-cache-service.ts';
import { S3Server } from '../../test/support/s3-server.ts';
import { TokenServer, UpstreamError, fetchToken } from '../../test/support/token-server.ts';
import { DynamoCache, TokenEndpointError, cacheAwsClient, clientCredentialsToken, type DynamoCacheOptions } from '../../src/index.ts';
import { checkClaims, cutClaims, dynamoTarget, printTable, runScenario, type FleetSize, type Row, type Scenario, type Upstream } from './fleet.ts';

const size: FleetSize = {
  environments: Number(process.env.DEMO_ENVIRONMENTS ?? 25),
  seconds: Number(process.env.DEMO_SECONDS ?? 4),
  pauseBetweenInvocationsMs: 20,
};
const UPSTREAM_RATE = 5; // token requests per second before the endpoint answers 429
const UPSTREAM_LATENCY_MS = 20;
const TOKEN_TTL_SECONDS = 1.5; // short, so the run sees several expiries
const S3_RATE = 10; // GetObject requests per second before the endpoint answers 503 SlowDown
const S3_OBJECTS = ['templates/invoice.html', 'templates/receipt.html', 'config/features.json', 'config/limits.json'];
const S3_TTL_SECONDS = 1.5;
const TOKEN_EXPIRES_IN_SECONDS = 2; // expires_in of the tokens the OAuth endpoint issues
const TOKEN_SKEW_SECONDS = 0.5;
const CLIENT = { id: 'demo-client', secret: 'demo-secret' };

const localAws = (endpoint: string) => ({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });

async function main(): Promise<void> {
  const dynamo = await dynamoTarget();
  const tokens = await TokenServer.start({ ratePerSecond: UPSTREAM_RATE, latencyMs: UPSTREAM_LATENCY_MS, expiresInSeconds: TOKEN_EXPIRES_IN_SECONDS, clients: { [CLIENT.id]: CLIENT.secret } });
  const s3 = await S3Server.start({ ratePerSecond: S3_RATE, latencyMs: UPSTREAM_LATENCY_MS });
  for (const key of S3_OBJECTS) s3.put('app-assets', key, randomBytes(20_000));
  const runId = Date.now().toString(36);
  const quietLogger = new Logger({ serviceName: 'dynamo-cache-demo', logLevel: 'ERROR' });
  const cacheOptions = (client: DynamoCacheOptions['client'], namespace: string): DynamoCacheOptions => ({ tableName: dynamo.tableName, client, namespace: `demo-${runId}-${namespace}`, logger: quietLogger });
  const getToken = () => fetchToken(tokens.url, CLIENT.id, CLIENT.secret);
  const isThrottling = (error: unknown) =>
    (error instanceof UpstreamError && error.status === 429) || (error instanceof TokenEndpointError && error.status === 429) || (error as Error).name === 'SlowDown';

  const tokenScenarios: Scenario[] = [
    { name: 'no cache', environment: () => ({ invoke: getToken, cacheErrors: () => 0 }) },
    {
      name: 'original CacheService (port)',
      environment: (_index, client) => {
        const cache = new OriginalCacheService(client, dynamo.tableName);
        const key = `demo-${runId}-original:access_token`;
        return {
          // RefreshToken.get_token(), line for line.
          async invoke() {
            let token = await cache.get(key);
            if (token === undefined) {
              token = await getToken();
              await cache.set(key, token, TOKEN_TTL_SECONDS);
            }
            return token;
          },
          cacheErrors: () => 0,
        };
      },
    },
    {
      name: 'dynamo-cache, lease off',
      environment: (_index, client) => {
        const cache = new DynamoCache({ ...cacheOptions(client, 'nolease'), lease: false });
        return { invoke: () => cache.getOrSet('access_token', getToken, { ttlSeconds: TOKEN_TTL_SECONDS }), cacheErrors: () => cache.stats().errors };
      },
    },
    {
      name: 'dynamo-cache (lease, default)',
      environment: (_index, client) => {
        const cache = new DynamoCache(cacheOptions(client, 'lease'));
        return { invoke: () => cache.getOrSet('access_token', getToken, { ttlSeconds: TOKEN_TTL_SECONDS }), cacheErrors: () => cache.stats().errors };
      },
    },
  ];

  // One invocation reads one of the objects, in turn, with the SDK's default retries (3 attempts, backoff).
  const readObject = (client: S3Client, index: number) => {
    let turn = index;
    return async () => {
      const Key = S3_OBJECTS[turn++ % S3_OBJECTS.length];
      return (await client.send(new GetObjectCommand({ Bucket: 'app-assets', Key }))).Body!.transformToByteArray();
    };
  };
  const s3Client = () => new S3Client({ ...localAws(s3.endpoint), forcePathStyle: true });
  const tokenEncryption = { keys: { demo: randomBytes(32) }, writeKeyId: 'demo' };
  const sdkScenarios: [Scenario, Upstream][] = [
    [{ name: 'S3 GetObject, no cache', environment: (index) => ({ invoke: readObject(s3Client(), index), cacheErrors: () => 0 }) }, s3],
    [
      {
        name: 'S3 GetObject, cacheAwsClient',
        environment: (index, client) => {
          const cache = new DynamoCache(cacheOptions(client, 's3'));
          const s3Cached = cacheAwsClient(s3Client(), { cache, commands: { GetObjectCommand: { ttlSeconds: S3_TTL_SECONDS, staleIfErrorSeconds: 60 } } });
          return { invoke: readObject(s3Cached, index), cacheErrors: () => cache.stats().errors };
        },
      },
      s3,
    ],
    [{ name: 'OAuth token, hand-written request', environment: () => ({ invoke: getToken, cacheErrors: () => 0 }) }, tokens],
    [
      {
        name: 'OAuth token, clientCredentialsToken',
        environment: (_index, client) => {
          const cache = new DynamoCache({ ...cacheOptions(client, 'oauth'), encryption: tokenEncryption });
          const accessToken = clientCredentialsToken({ cache, tokenUrl: tokens.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, skewSeconds: TOKEN_SKEW_SECONDS });
          return { invoke: () => accessToken(), cacheErrors: () => cache.stats().errors };
        },
      },
      tokens,
    ],
  ];

  console.log(
    `dynamo-cache demo: ${size.environments} execution environments invoking for ${size.seconds} s each scenario; ` +
      `token endpoint allows ${UPSTREAM_RATE} req/s (429 above), token TTL ${TOKEN_TTL_SECONDS} s; DynamoDB: ${dynamo.description}\n`,
  );
  const rows: Row[] = [];
  for (const scenario of tokenScenarios) rows.push(await runScenario(scenario, dynamo.clientConfig, tokens, size, isThrottling));
  printTable(rows);

  console.log(
    `\nThe upstreams of the original service, without and with the cache: S3 allows ${S3_RATE} GetObject/s (503 SlowDown above; ` +
      `${S3_OBJECTS.length} objects of 20 KB, cached ${S3_TTL_SECONDS} s), the OAuth endpoint ${UPSTREAM_RATE} token requests/s ` +
      `(429 above; expires_in ${TOKEN_EXPIRES_IN_SECONDS} s, skew ${TOKEN_SKEW_SECONDS} s)\n`,
  );
  const sdkRows: Row[] = [];
  for (const [scenario, upstream] of sdkScenarios) sdkRows.push(await runScenario(scenario, dynamo.clientConfig, upstream, size, isThrottling));
  printTable(sdkRows);
  await tokens.close();
  await s3.close();
  await dynamo.close();

  const [none, , , leased] = rows as [Row, Row, Row, Row];
  // A token expires every TOKEN_TTL_SECONDS; with the lease the whole fleet should fetch once per expiry.
  const tokenLifetimes = Math.ceil(size.seconds / TOKEN_TTL_SECONDS);
  checkClaims('With dynamo-cache and its lease:', [
    [`fewer upstream calls than no cache (${leased.upstreamCalls} < ${none.upstreamCalls})`, leased.upstreamCalls < none.upstreamCalls],
    [`fewer 429s than no cache (${leased.throttled} < ${none.throttled})`, leased.throttled < none.throttled],
    [`fewer failed invocations than no cache (${leased.failed} < ${none.failed})`, leased.failed < none.failed],
    [
      `about one upstream call per token lifetime across the fleet (${leased.upstreamCalls} calls for ${tokenLifetimes} lifetimes of ${TOKEN_TTL_SECONDS} s)`,
      leased.upstreamCalls <= tokenLifetimes + 1,
    ],
  ]);
  const [s3None, s3Cached, oauthNone, oauthCached] = sdkRows as [Row, Row, Row, Row];
  checkClaims('S3 through cacheAwsClient:', cutClaims(s3None, s3Cached));
  // Fresh for expires_in - skew: the fleet asks once per freshness period, plus the first request.
  const refreshes = Math.ceil(size.seconds / (TOKEN_EXPIRES_IN_SECONDS - TOKEN_SKEW_SECONDS));
  checkClaims('OAuth tokens through clientCredentialsToken:', [
    ...cutClaims(oauthNone, oauthCached),
    [`about one token request per freshness period across the fleet (${oauthCached.upstreamCalls} for ${refreshes} periods)`, oauthCached.upstreamCalls <= refreshes + 1],
  ]);
}

await main();
