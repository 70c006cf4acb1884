/**
 * The demo's fleet: simulated Lambda execution environments invoking in a loop against a throttling upstream,
 * and the table of what each scenario cost the upstream and the callers.
 */
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** One simulated execution environment: its own SDK clients (and cache, if any). */
export interface Environment {
  /** One invocation's work; throws when the invocation fails. */
  invoke(): Promise<unknown>;
  /** Cache failures absorbed, for caches that report them. */
  cacheErrors(): number;
}

/** A way of running the fleet: how each environment is built on its own DynamoDB client. */
export interface Scenario {
  readonly name: string;
  environment(index: number, client: DynamoDBClient): Environment;
}

/** The upstream's view of a scenario. */
export interface Upstream {
  /** Requests it received (throttled ones included). */
  readonly calls: number;
  /** Requests it throttled (429, 503 SlowDown). */
  readonly throttled: number;
  /** Forgets the counts and refills its rate limit, so each scenario starts from the same state. */
  reset(): void;
}

/** How long and how wide the fleet runs. */
export interface FleetSize {
  readonly environments: number;
  readonly seconds: number;
  readonly pauseBetweenInvocationsMs: number;
}

/** One line of the table. */
export interface Row {
  scenario: string;
  invocations: number;
  upstreamCalls: number;
  throttled: number;
  throttlingErrorsSeen: number;
  failed: number;
  p50: number;
  p99: number;
  dynamoRequests: number;
  cacheErrors: number;
}

/**
 * Runs `scenario` for `size.seconds`: each environment invokes, pauses and invokes again. An invocation that
 * throws fails; `isThrottling` tells which failures were the upstream's throttling reaching the caller.
 */
export async function runScenario(scenario: Scenario, clientConfig: DynamoDBClientConfig, upstream: Upstream, size: FleetSize, isThrottling: (error: unknown) => boolean): Promise<Row> {
  upstream.reset();
  let dynamoRequests = 0;
  const latencies: number[] = [];
  let failed = 0;
  let throttlingErrorsSeen = 0;
  const environments = Array.from({ length: size.environments }, (_, index) => {
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
  const deadline = performance.now() + size.seconds * 1000;
  await Promise.all(
    environments.map(async ({ env }) => {
      while (performance.now() < deadline) {
        const start = performance.now();
        try {
          await env.invoke();
        } catch (error) {
          failed += 1; // the invocation fails, as the original's would on a 429
          if (isThrottling(error)) throttlingErrorsSeen += 1;
        }
        latencies.push(performance.now() - start);
        await sleep(size.pauseBetweenInvocationsMs);
      }
    }),
  );
  for (const { client } of environments) client.destroy();
  latencies.sort((a, b) => a - b);
  return {
    scenario: scenario.name,
    invocations: latencies.length,
    upstreamCalls: upstream.calls,
    throttled: upstream.throttled,
    throttlingErrorsSeen,
    failed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    dynamoRequests,
    cacheErrors: environments.reduce((sum, { env }) => sum + env.cacheErrors(), 0),
  };
}

/** The embedded dynalite, or real DynamoDB when `DYNAMO_CACHE_TABLE` is set. */
export async function dynamoTarget(): Promise<{ tableName: string; clientConfig: DynamoDBClientConfig; description: string; close(): Promise<void> }> {
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
  // dynalite turns a new table ACTIVE on a timer: a request sent at once can find it missing.
  while ((await admin.send(new DescribeTableCommand({ TableName: 'app-cache-demo' }))).Table?.TableStatus !== 'ACTIVE') await new Promise((resolve) => setTimeout(resolve, 5));
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

/** Prints the rows as a Markdown table. */
export function printTable(rows: Row[]): void {
  const header = ['scenario', 'invocations', 'upstream calls', 'throttled by upstream', 'throttling errors seen', 'failed invocations', 'p50 ms', 'p99 ms', 'DynamoDB requests', 'cache errors absorbed'];
  const body = rows.map((r) => [r.scenario, r.invocations, r.upstreamCalls, r.throttled, r.throttlingErrorsSeen, r.failed, r.p50.toFixed(1), r.p99.toFixed(1), r.dynamoRequests, r.cacheErrors].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const row of body) console.log(line(row));
}

/** Prints the claims with ok/FAIL; sets a failing exit code when any does not hold. */
export function checkClaims(title: string, checks: readonly (readonly [string, boolean])[]): void {
  console.log(`\n${title}`);
  for (const [claim, holds] of checks) console.log(`  ${holds ? 'ok  ' : 'FAIL'} ${claim}`);
  if (checks.some(([, holds]) => !holds)) process.exitCode = 1;
}

/** The claims every cached scenario must make good against its uncached twin. */
export function cutClaims(none: Row, cached: Row): [string, boolean][] {
  return [
    [`fewer upstream calls than no cache (${cached.upstreamCalls} < ${none.upstreamCalls})`, cached.upstreamCalls < none.upstreamCalls],
    [`fewer requests throttled by the upstream (${cached.throttled} < ${none.throttled})`, cached.throttled < none.throttled],
    [`fewer throttling errors seen by invocations (${cached.throttlingErrorsSeen} < ${none.throttlingErrorsSeen})`, cached.throttlingErrorsSeen < none.throttlingErrorsSeen],
    [`fewer failed invocations (${cached.failed} < ${none.failed})`, cached.failed < none.failed],
  ];
}
