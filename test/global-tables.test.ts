import { CreateTableCommand, GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { createCacheTable, localClientConfig, rawClient, startDynalite, untilActive, type LocalDynamo } from './support/dynalite.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { FleetUpstream, runFleet } from './support/fleet.ts';
import { RecordingLogger } from './support/recording-logger.ts';
import { Replication } from './support/replication.ts';

/**
 * A global table in multi-Region eventual consistency (MREC), modelled locally: two "Regions" (two dynalite
 * servers), each behind a proxy that copies every write it applies into the other Region 200 ms later (last
 * writer wins). The lease is a conditional write, checked in its own Region only: each Region's fleet refreshes a
 * key once, so the upstream sees at most one call per Region per expiry. A strongly consistent global table
 * (MRSC) checks conditions across Regions, as one table does: one call for the whole fleet.
 */
const LAG_MS = 200;
const PER_REGION = 10;

interface Region {
  readonly local: LocalDynamo;
  readonly client: DynamoDBClient;
  readonly proxy: FaultProxy;
}

let a: Region;
let b: Region;
beforeAll(async () => {
  const [localA, localB] = await Promise.all([startDynalite(), startDynalite()]);
  const [clientA, clientB] = [rawClient(localA.endpoint), rawClient(localB.endpoint)];
  const [proxyA, proxyB] = await Promise.all([FaultProxy.start(localA.endpoint), FaultProxy.start(localB.endpoint)]);
  const [beforeA, beforeB] = Replication.between(clientA, clientB, LAG_MS);
  proxyA.setModel(beforeA);
  proxyB.setModel(beforeB);
  a = { local: localA, client: clientA, proxy: proxyA };
  b = { local: localB, client: clientB, proxy: proxyB };
});
afterAll(async () => {
  for (const region of [a, b]) {
    await region?.proxy.close();
    region?.client.destroy();
    await region?.local.close();
  }
});

/** The same table in both Regions. */
async function globalTable(): Promise<string> {
  const tableName = await createCacheTable(a.client);
  await b.client.send(
    new CreateTableCommand({ TableName: tableName, KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
  );
  await untilActive(b.client, tableName);
  return tableName;
}

function environments(n: number, tableName: string, endpoint: string): DynamoCache[] {
  return Array.from({ length: n }, () => new DynamoCache({ tableName, clientConfig: localClientConfig(endpoint), timeoutMs: 5000, logger: new RecordingLogger() }));
}

describe('Global Tables', () => {
  it('eventual consistency (MREC): a cold fleet in two Regions, then expiries: at most one upstream call per Region per expiry, and the Regions converge', async () => {
    const tableName = await globalTable();
    const caches = [...environments(PER_REGION, tableName, a.proxy.endpoint), ...environments(PER_REGION, tableName, b.proxy.endpoint)];
    const upstream = new FleetUpstream({ latencyMs: 50 });
    const ttlSeconds = 1;
    const durationMs = 2500;
    const outcome = await runFleet({ caches, key: 'token', upstream, options: { ttlSeconds }, ratePerSecond: 10, durationMs, together: true });
    expect(outcome.failed).toBe(0);
    expect(outcome.stats.uncoordinatedFetches).toBe(0);
    // Counted from durationMs, the time invocations start in (the run's elapsed time also holds its last
    // invocations' tails, longer on a loaded machine, in which nothing expires for them): the values they meet
    // begin at most every nine tenths of the TTL (a refresh comes up to a tenth early), one per Region each.
    const lifetimes = Math.floor(durationMs / (0.9 * ttlSeconds * 1000)) + 1;
    const fetches = (region: readonly DynamoCache[]) => region.reduce((n, cache) => n + cache.stats().fetches, 0);
    expect(fetches(caches.slice(0, PER_REGION))).toBeLessThanOrEqual(lifetimes);
    expect(fetches(caches.slice(PER_REGION))).toBeLessThanOrEqual(lifetimes);
    // And the fleet refreshed after every expiry the invocations met.
    expect(upstream.calls).toBeGreaterThanOrEqual(Math.floor(durationMs / 1000 / ttlSeconds) + 1);
    // Replication settles: both Regions hold the same value (the last write wins in both).
    const read = (region: Region) => region.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'token' } }, ConsistentRead: true }));
    await vi.waitFor(async () => expect((await read(a)).Item).toEqual((await read(b)).Item), { timeout: 3000, interval: 100 });
  });

  it('strong consistency (MRSC): the lease is one conditional write across Regions, so a cold fleet in two Regions calls the upstream once', async () => {
    // An MRSC table checks a condition against every Region: locally, both Regions' environments reach one table.
    const tableName = await createCacheTable(a.client);
    const caches = [...environments(PER_REGION, tableName, a.local.endpoint), ...environments(PER_REGION, tableName, a.local.endpoint)];
    const upstream = new FleetUpstream({ latencyMs: 50 });
    const values = await Promise.all(caches.map((cache) => cache.getOrSet('token', upstream.fetch, { ttlSeconds: 60 })));
    expect(upstream.calls).toBe(1);
    expect(new Set(values.map((value) => JSON.stringify(value))).size).toBe(1);
  });
});
