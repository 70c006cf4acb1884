import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { DynamoCache } from '../../src/cache.ts';
import type { DynamoCacheOptions } from '../../src/options.ts';
import { createCacheTable, localClientConfig, rawClient, startDynalite, type LocalDynamo } from './dynalite.ts';
import { FaultProxy } from './fault-proxy.ts';
import { RecordingLogger } from './recording-logger.ts';

/** What a test file gets from {@link useDynalite}. */
export interface DynaliteFixture {
  /** The dynalite endpoint. */
  endpoint: string;
  /** A raw SDK client on it, to arrange and inspect items. */
  client: DynamoDBClient;
  /** Creates a fresh table. */
  newTable(keyAttribute?: string): Promise<string>;
  /**
   * A cache on `tableName` (a fresh one unless given) with a recording logger. The time budget is generous
   * (5 s) so that a loaded CI machine does not turn hits into misses; budget tests set their own.
   */
  newCache(options?: DynamoCacheOptions & { endpoint?: string }): Promise<{ cache: DynamoCache; logger: RecordingLogger; tableName: string }>;
}

/** Starts a dynalite for this test file (before all tests) and stops it after. */
export function useDynalite(): DynaliteFixture {
  let local: LocalDynamo;
  const fixture = {} as DynaliteFixture;
  beforeAll(async () => {
    local = await startDynalite();
    fixture.endpoint = local.endpoint;
    fixture.client = rawClient(local.endpoint);
  });
  afterAll(async () => {
    fixture.client?.destroy();
    await local?.close();
  });
  fixture.newTable = (keyAttribute) => createCacheTable(fixture.client, keyAttribute);
  fixture.newCache = async (options = {}) => {
    const { endpoint = fixture.endpoint, ...rest } = options;
    const tableName = rest.tableName ?? (await fixture.newTable(rest.attributes?.key));
    const logger = (rest.logger as RecordingLogger | undefined) ?? new RecordingLogger();
    const cache = new DynamoCache({ timeoutMs: 5000, clientConfig: localClientConfig(endpoint), ...rest, tableName, logger });
    return { cache, logger, tableName };
  };
  return fixture;
}

/** A fault proxy in front of this file's dynalite: started before all tests, healed and its counts reset before each. */
export function useFaultProxy(db: DynaliteFixture): FaultProxy {
  const proxy = new FaultProxy(() => db.endpoint);
  beforeAll(async () => {
    await proxy.listen();
  });
  afterAll(async () => {
    await proxy.close();
  });
  beforeEach(() => {
    proxy.setFaults({});
    proxy.resetCounts();
  });
  return proxy;
}

/**
 * A waiter behind another environment's refresh stops when its caller gives up: `hold` takes the refresh lease
 * and keeps it (its upstream is slow), `wait` polls DynamoDB through `proxy` for that refresh's value until its
 * signal aborts. Asserts the waiter was polling, ended with an AbortError, and sent nothing after.
 */
export async function expectPollingEndsAtAbort(proxy: FaultProxy, hold: () => Promise<unknown>, wait: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const held = hold().catch(() => undefined);
  await sleep(200); // the holder has the lease and waits for its upstream
  const { before, outcome, after } = await proxy.requestsAfterAbort(wait);
  expect(before).toBeGreaterThan(0); // the waiter was polling
  expect(outcome).toMatchObject({ name: 'AbortError' });
  expect(after).toBe(0);
  await held;
}
