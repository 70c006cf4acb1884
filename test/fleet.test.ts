import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoCache } from '../src/cache.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { useDynalite } from './support/fixtures.ts';
import { FleetUpstream, runFleet, type FleetOutcome } from './support/fleet.ts';
import { PartitionModel } from './support/partition-model.ts';
import type { RecordingLogger } from './support/recording-logger.ts';

/**
 * The fleet's promises, scaled down to run in seconds: simulated environments (each its own cache, memory tier and
 * SDK client) through the partition model, whose limits are scaled so far down (0.002: 6 read and 2 write units
 * per second and partition) that 20 environments starting at once throttle it, however slowly they start. Counts are asserted, not timings (those are the
 * bench's, `npm run bench`): the waits are given room (`lease.waitMs`) so that a loaded machine cannot turn a
 * slow wait into a fetch.
 */
const db = useDynalite();
const ENVIRONMENTS = 20;
const SCALE = 0.002;

let model: PartitionModel;
let proxy: FaultProxy;
beforeAll(async () => {
  proxy = new FaultProxy(() => db.endpoint);
  await proxy.listen();
});
afterAll(async () => {
  await proxy.close();
});

let loggers: RecordingLogger[] = [];

async function fleet(namespace: string, scale = SCALE): Promise<DynamoCache[]> {
  model = new PartitionModel({ scale, latencyMs: 2 });
  proxy.setModel(model);
  const tableName = await db.newTable();
  const environments = await Promise.all(
    Array.from({ length: ENVIRONMENTS }, () => db.newCache({ tableName, endpoint: proxy.endpoint, namespace, timeoutMs: 300, lease: { waitMs: 20_000 } })),
  );
  loggers = environments.map(({ logger }) => logger);
  return environments.map(({ cache }) => cache);
}

/** Why any environment fetched without the lease (its warnings), and the errors invocations failed with: none, in a test that passes. */
function coordination(outcome: FleetOutcome): { withoutLease: string[]; failures: Record<string, number> } {
  return { withoutLease: loggers.flatMap((logger) => logger.warnings.filter((w) => /without the refresh lease/.test(w.message)).map((w) => w.message)), failures: { ...outcome.failures } };
}

describe('a fleet against DynamoDB that throttles (the partition model)', () => {
  it('a cold start of every environment at once and then expiries under load: one upstream call per expiry, none without the lease', async () => {
    const caches = await fleet('expiry');
    const upstream = new FleetUpstream();
    const ttlSeconds = 2;
    const durationMs = 4000;
    const outcome = await runFleet({ caches, key: 'token', upstream, options: { ttlSeconds }, ratePerSecond: 10, durationMs, together: true });
    expect(model.throttledRequests + model.throttledItems).toBeGreaterThan(0); // the partitions did throttle
    expect(coordination(outcome)).toEqual({ withoutLease: [], failures: {} });
    expect(outcome.stats.uncoordinatedFetches).toBe(0);
    // The first fill, then one refresh per TTL elapsed (a refresh comes up to a tenth of the TTL ahead of it).
    expect(upstream.calls).toBeGreaterThanOrEqual(2);
    expect(upstream.calls).toBeLessThanOrEqual(Math.floor(outcome.elapsedMs / 1000 / ttlSeconds) + 1);
  });

  it('an upstream that answers 429 for a while: an environment that had the value answers it (stale), every time, and the upstream is asked about once a second', async () => {
    const caches = await fleet('storm', 0.01); // DynamoDB's side is not the point here: 30 read units a second
    const upstream = new FleetUpstream();
    const stormMs = 1500;
    upstream.refuseFrom(2, stormMs); // from the first refresh on
    const outcome = await runFleet({
      caches,
      key: 'token',
      upstream,
      options: { ttlSeconds: 1, staleIfErrorSeconds: 300 },
      ratePerSecond: 10,
      durationMs: 3000,
      together: true,
    });
    expect(upstream.refused).toBeGreaterThan(0); // the storm did reach the upstream
    expect(outcome.failedAfterFill).toBe(0);
    expect(outcome.stats.staleIfError).toBeGreaterThan(ENVIRONMENTS);
    expect(coordination(outcome).withoutLease).toEqual([]);
    // Refused calls: a failed refresh keeps the fleet off the upstream for a second (FAILED_REFRESH_RETRY_MS).
    expect(upstream.refused).toBeLessThanOrEqual(stormMs / 1000 + 2);
  });
});
