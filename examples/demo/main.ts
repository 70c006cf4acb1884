/**
 * `npm run demo`: the original story, replayed. A fleet of Lambda execution environments needs an access
 * token on every invocation; the token endpoint answers 429 above a fixed rate. The same fleet runs with
 * no cache, with a port of the original Python `CacheService`, and with `dynamo-cache` without and with its
 * cross-environment lease, and a table shows what each costs the upstream and the callers.
 *
 * DynamoDB: an embedded dynalite on 127.0.0.1 by default. Set `DYNAMO_CACHE_TABLE` (a table with a String
 * partition key `id`) and the usual AWS settings (`AWS_REGION`, credentials, or `AWS_ENDPOINT_URL_DYNAMODB`)
 * to run against real DynamoDB. `DEMO_ENVIRONMENTS` and `DEMO_SECONDS` size the run.
 */
import { CreateTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import dynalite from 'dynalite';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { OriginalCacheService } from '../../bench/baselines/original-cache-service.ts';
import { DynamoCache } from '../../src/index.ts';
import { TokenServer, fetchToken } from '../../test/support/token-server.ts';

const ENVIRONMENTS = Number(process.env.DEMO_ENVIRONMENTS ?? 25);
const SECONDS = Number(process.env.DEMO_SECONDS ?? 4);
const UPSTREAM_RATE = 5; // token requests per second before the endpoint answers 429
const UPSTREAM_LATENCY_MS = 20;
const TOKEN_TTL_SECONDS = 1.5; // short, so the run sees several expiries
const PAUSE_BETWEEN_INVOCATIONS_MS = 20;

/** One simulated execution environment: its own SDK client (and cache, if any). */
interface Environment {
  getToken(): Promise<string>;
  /** Cache failures absorbed, for caches that report them. */
  cacheErrors(): number;
}

interface Scenario {
  readonly name: string;
  environment(index: number, client: DynamoDBClient): Environment;
}

interface Row {
  scenario: string;
  invocations: number;
  upstreamCalls: number;
  throttled: number;
  failed: number;
  p50: number;
  p99: number;
  dynamoRequests: number;
  cacheErrors: number;
}

async function main(): Promise<void> {
  const dynamo = await dynamoTarget();
  const upstream = await TokenServer.start({ ratePerSecond: UPSTREAM_RATE, latencyMs: UPSTREAM_LATENCY_MS });
  const runId = Date.now().toString(36);
  const quietLogger = new Logger({ serviceName: 'dynamo-cache-demo', logLevel: 'ERROR' });
  const getToken = () => fetchToken(upstream.url);

  const scenarios: Scenario[] = [
    { name: 'no cache', environment: () => ({ getToken, cacheErrors: () => 0 }) },
    {
      name: 'original CacheService (port)',
      environment: (_index, client) => {
        const cache = new OriginalCacheService(client, dynamo.tableName);
        const key = `demo-${runId}-original:access_token`;
        return {
          // RefreshToken.get_token(), line for line.
          async getToken() {
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
        const cache = new DynamoCache({ tableName: dynamo.tableName, client, namespace: `demo-${runId}-nolease`, logger: quietLogger, lease: false });
        return {
          getToken: () => cache.getOrSet('access_token', getToken, { ttlSeconds: TOKEN_TTL_SECONDS }),
          cacheErrors: () => cache.stats().errors,
        };
      },
    },
    {
      name: 'dynamo-cache (lease, default)',
      environment: (_index, client) => {
        const cache = new DynamoCache({ tableName: dynamo.tableName, client, namespace: `demo-${runId}-lease`, logger: quietLogger });
        return {
          getToken: () => cache.getOrSet('access_token', getToken, { ttlSeconds: TOKEN_TTL_SECONDS }),
          cacheErrors: () => cache.stats().errors,
        };
      },
    },
  ];

  console.log(
    `dynamo-cache demo: ${ENVIRONMENTS} execution environments invoking for ${SECONDS} s each scenario; ` +
      `token endpoint allows ${UPSTREAM_RATE} req/s (429 above), token TTL ${TOKEN_TTL_SECONDS} s; DynamoDB: ${dynamo.description}\n`,
  );
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    upstream.reset();
    rows.push(await runScenario(scenario, dynamo.clientConfig, upstream));
  }
  printTable(rows);
  await upstream.close();
  await dynamo.close();

  const [none, , , leased] = rows as [Row, Row, Row, Row];
  // A token expires every TOKEN_TTL_SECONDS; with the lease the whole fleet should fetch once per expiry.
  const tokenLifetimes = Math.ceil(SECONDS / TOKEN_TTL_SECONDS);
  const checks = [
    [`fewer upstream calls than no cache (${leased.upstreamCalls} < ${none.upstreamCalls})`, leased.upstreamCalls < none.upstreamCalls],
    [`fewer 429s than no cache (${leased.throttled} < ${none.throttled})`, leased.throttled < none.throttled],
    [`fewer failed invocations than no cache (${leased.failed} < ${none.failed})`, leased.failed < none.failed],
    [
      `about one upstream call per token lifetime across the fleet (${leased.upstreamCalls} calls for ${tokenLifetimes} lifetimes of ${TOKEN_TTL_SECONDS} s)`,
      leased.upstreamCalls <= tokenLifetimes + 1,
    ],
  ] as const;
  console.log('\nWith dynamo-cache and its lease:');
  for (const [claim, holds] of checks) console.log(`  ${holds ? 'ok  ' : 'FAIL'} ${claim}`);
  if (checks.some(([, holds]) => !holds)) process.exitCode = 1;
}

async function runScenario(scenario: Scenario, clientConfig: DynamoDBClientConfig, upstream: TokenServer): Promise<Row> {
  let dynamoRequests = 0;
  const latencies: number[] = [];
  let failed = 0;
  const environments = Array.from({ length: ENVIRONMENTS }, (_, index) => {
    const client = new DynamoDBClient(clientConfig);
    client.middlewareStack.add(
      (next) => (args) => {
        dynamoRequests += 1;
        return next(args);
      },
      { step: 'build', name: 'demoRequestCounter' },
    );
    return { client, env: scenario.environment(index, client) };
  });
  const deadline = performance.now() + SECONDS * 1000;
  await Promise.all(
    environments.map(async ({ env }) => {
      while (performance.now() < deadline) {
        const start = performance.now();
        try {
          await env.getToken();
        } catch {
          failed += 1; // the invocation fails, as the original's would on a 429
        }
        latencies.push(performance.now() - start);
        await sleep(PAUSE_BETWEEN_INVOCATIONS_MS);
      }
    }),
  );
  for (const { client } of environments) client.destroy();
  latencies.sort((a, b) => a - b);
  return {
    scenario: scenario.name,
    invocations: latencies.length,
    upstreamCalls: upstream.calls,
    throttled: upstream.counts.throttled,
    failed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    dynamoRequests,
    cacheErrors: environments.reduce((sum, { env }) => sum + env.cacheErrors(), 0),
  };
}

/** The embedded dynalite, or real DynamoDB when `DYNAMO_CACHE_TABLE` is set. */
async function dynamoTarget(): Promise<{ tableName: string; clientConfig: DynamoDBClientConfig; description: string; close(): Promise<void> }> {
  const tableName = process.env.DYNAMO_CACHE_TABLE;
  if (tableName) {
    const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL;
    return { tableName, clientConfig: {}, description: `table ${tableName} at ${endpoint ?? 'AWS'}`, close: async () => {} };
  }
  const server = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const clientConfig: DynamoDBClientConfig = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  };
  const admin = new DynamoDBClient(clientConfig);
  await admin.send(
    new CreateTableCommand({
      TableName: 'app-cache-demo',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  admin.destroy();
  return {
    tableName: 'app-cache-demo',
    clientConfig,
    description: `embedded dynalite at ${clientConfig.endpoint as string}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function printTable(rows: Row[]): void {
  const header = ['scenario', 'invocations', 'upstream calls', '429s seen', 'failed invocations', 'p50 ms', 'p99 ms', 'DynamoDB requests', 'cache errors absorbed'];
  const body = rows.map((r) => [r.scenario, r.invocations, r.upstreamCalls, r.throttled, r.failed, r.p50.toFixed(1), r.p99.toFixed(1), r.dynamoRequests, r.cacheErrors].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of body) console.log(line(row));
}

await main();
