import { BatchGetItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { StatsRecorder } from '../src/observability/stats.ts';
import { DynamoGuard, RETRY_DEFAULTS, type Attempt, type CallBudget } from '../src/resilience/dynamo-guard.ts';
import { localClientConfig } from './support/dynalite.ts';
import type { ThrottleError } from './support/fault-proxy.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

/** A cache that talks to dynalite through the fault proxy, with a tight budget and no breaker. */
function cacheBehindProxy(tableName: string, options: ConstructorParameters<typeof DynamoCache>[0] = {}) {
  return db.newCache({ tableName, endpoint: proxy.endpoint, memory: false, timeoutMs: 250, breaker: false, ...options });
}

async function elapsed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/** Slack over the budget for timers and a loaded CI machine; the budget itself is what is being checked. */
const SLACK_MS = 250;

describe('throttling injected at the HTTP level', () => {
  it.each<ThrottleError>(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'])(
    '%s: get resolves undefined within the budget, retried with backoff, logged and counted',
    async (throttleError) => {
      const tableName = await db.newTable();
      const { cache: direct } = await db.newCache({ tableName });
      await direct.set('k', 'v');
      const { cache, logger } = await cacheBehindProxy(tableName);
      proxy.setFaults({ throttleRate: 1, throttleError });
      const { value, ms } = await elapsed(() => cache.get('k'));
      expect(value).toBeUndefined();
      expect(ms).toBeLessThan(250 + SLACK_MS);
      expect(proxy.count('GetItem')).toBe(3); // maxAttempts 3: the first try and two retries
      expect(cache.stats()).toMatchObject({ misses: 1, errors: 1, throttles: 1, retries: 2 });
      expect(logger.warnings).toHaveLength(1);
      // The failing request is the read of the namespace generation, but the warning names what the caller did.
      expect(logger.warnings[0]!.fields).toMatchObject({ operation: 'get', key: 'k', request: 'GetItem', failure: 'throttle', errorName: throttleError });
      expect(JSON.stringify(logger.warnings[0]!.fields)).not.toMatch(/"key":"#dc:meta"/);
    },
  );

  it('a throttle that clears within the retries is invisible to the caller', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await cache.set('k', { ok: true });
    const { cache: throttled } = await cacheBehindProxy(tableName);
    proxy.setFaults({ throttleNext: 2 });
    expect(await throttled.get('k')).toEqual({ ok: true });
    expect(throttled.stats()).toMatchObject({ hits: 1, errors: 0, retries: 2 });
  });

  it('set resolves false, delete resolves false, getMany misses: nothing throws', async () => {
    const { cache } = await cacheBehindProxy(await db.newTable());
    proxy.setFaults({ throttleRate: 1 });
    await expect(cache.set('k', 'v')).resolves.toBe(false);
    await expect(cache.delete('k')).resolves.toBe(false);
    await expect(cache.getMany(['a', 'b'])).resolves.toEqual(new Map());
    // A fresh environment first reads the namespace generation; when that fails the call treats DynamoDB as
    // unavailable (one failed request, one time budget), and for a while does not ask again.
    expect(cache.stats().errors).toBe(1);
    expect(proxy.count('GetItem')).toBe(3); // one read of the generation, retried twice, then nothing
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await expect(cache.get('k')).resolves.toBeUndefined();
    expect(cache.stats().errors).toBe(2);
  });

  // Issue 20: throttling used to send getOrSet to its fetcher at once, which across a fleet is a stampede.
  it('getOrSet under throttling waits for DynamoDB (within lease.waitMs) before it calls the fetcher, once, and says so', async () => {
    const { cache, logger } = await cacheBehindProxy(await db.newTable(), { memory: {}, lease: { waitMs: 600 } });
    proxy.setFaults({ throttleRate: 1 });
    const fetcher = vi.fn(async () => 'from upstream');
    const { value, ms } = await elapsed(() => cache.getOrSet('k', fetcher));
    expect(value).toBe('from upstream');
    expect(fetcher).toHaveBeenCalledTimes(1);
    expect(ms).toBeGreaterThanOrEqual(550); // it asked DynamoDB again while the wait lasted
    expect(proxy.count('GetItem')).toBeGreaterThan(3);
    expect(cache.stats().uncoordinatedFetches).toBe(1);
    expect(logger.warnings.some((w) => /fetching without the refresh lease/.test(w.message))).toBe(true);
    // The value is in memory: the next calls answer from it, without the fetcher.
    expect(await cache.getOrSet('k', fetcher)).toBe('from upstream');
    expect(fetcher).toHaveBeenCalledTimes(1);
  });

  it('the memory tier keeps serving what was set while DynamoDB is throttled', async () => {
    const { cache } = await cacheBehindProxy(await db.newTable(), { memory: {} });
    await cache.get('warm-up'); // an environment that has reached DynamoDB knows the namespace generation
    proxy.setFaults({ throttleRate: 1 });
    expect(await cache.set('k', 'v')).toBe(false);
    expect(await cache.get('k')).toBe('v');
    expect(cache.stats().memoryHits).toBe(1);
  });
});

describe('outages', () => {
  it.each([
    ['500 InternalServerError', { serverErrorRate: 1 }, 'server'],
    ['503 ServiceUnavailable', { unavailableRate: 1 }, 'server'],
    ['dropped connections', { dropRate: 1 }, 'network'],
  ] as const)('%s: get is a miss after the retries, within the budget', async (_name, faults, failure) => {
    const { cache, logger } = await cacheBehindProxy(await db.newTable());
    proxy.setFaults(faults);
    const { value, ms } = await elapsed(() => cache.get('k'));
    expect(value).toBeUndefined();
    expect(ms).toBeLessThan(250 + SLACK_MS);
    expect(proxy.count('GetItem')).toBe(3);
    expect(logger.warnings[0]!.fields).toMatchObject({ failure });
  });

  it.each([
    ['a client the cache created (cancelled by its requestTimeout)', false],
    ['a client the caller gave (cancelled by an AbortSignal)', true],
  ])('a DynamoDB that answers too slowly is cut off at the budget and the request cancelled: %s', async (_name, ownClient) => {
    const tableName = await db.newTable();
    const { cache, logger } = ownClient
      ? await db.newCache({ tableName, client: new DynamoDBClient({ ...localClientConfig(proxy.endpoint), maxAttempts: 1 }), memory: false, timeoutMs: 250, breaker: false })
      : await cacheBehindProxy(tableName);
    await cache.get('warm-up'); // the namespace generation, read while DynamoDB is fast
    proxy.setFaults({ latencyMs: 5_000 });
    proxy.resetCounts();
    const { value, ms } = await elapsed(() => cache.get('k'));
    expect(value).toBeUndefined();
    expect(ms).toBeLessThan(250 + SLACK_MS);
    expect(cache.stats()).toMatchObject({ errors: 1, timeouts: 1 });
    expect(logger.warnings[0]!.fields).toMatchObject({ failure: 'timeout' });
    // The request itself was given up, not left running: the proxy saw the connection close unanswered.
    await vi.waitFor(() => expect(proxy.injected.get('abandoned')).toBe(1), { timeout: 1000 });
  });

  it('an endpoint where nothing listens is a miss, not an exception', async () => {
    const { cache } = await db.newCache({ endpoint: 'http://127.0.0.1:9', memory: false, timeoutMs: 250, breaker: false });
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.set('k', 1)).toBe(false);
    expect(await cache.getOrSet('k', () => 'fetched')).toBe('fetched');
  });

  it('a missing table is a miss, logged as a client failure, not retried', async () => {
    const { cache, logger } = await db.newCache({ tableName: 'no-such-table', endpoint: proxy.endpoint, memory: false, breaker: false });
    expect(await cache.get('k')).toBeUndefined();
    expect(proxy.count('GetItem')).toBe(1);
    expect(logger.warnings[0]!.fields).toMatchObject({ failure: 'client', errorName: 'ResourceNotFoundException' });
  });

  it('the time budget also bounds getMany and its retries', async () => {
    const { cache } = await cacheBehindProxy(await db.newTable());
    await cache.get('warm-up');
    proxy.setFaults({ latencyMs: 5_000 });
    const { value, ms } = await elapsed(() => cache.getMany(Array.from({ length: 150 }, (_, i) => `k${i}`)));
    expect(value.size).toBe(0);
    expect(ms).toBeLessThan(250 + SLACK_MS);
    expect(proxy.count('BatchGetItem')).toBe(2);
  });
});

describe("the client the cache creates: its own request timeout, its middleware resolved once", () => {
  /** What each attempt of an operation with this budget is given to pass to `client.send`. */
  async function httpOf(guard: DynamoGuard, timeoutMs?: number, call?: CallBudget): Promise<Attempt['http']> {
    const outcome = await guard.run('GetItem', async (attempt) => attempt.http, undefined, timeoutMs, call);
    if (!outcome.ok) throw new Error(`the operation failed: ${outcome.kind}`);
    return outcome.value;
  }

  it("a request within the cache's budget is sent without options (the client's own timeout is the budget's); a shorter or longer budget passes its own", async () => {
    const settings = { timeoutMs: 250, retry: RETRY_DEFAULTS, breaker: false as const, logger: new RecordingLogger(), stats: new StatsRecorder() };
    const guard = new DynamoGuard({ ...settings, cancel: 'request-timeout', requestTimeoutMs: 275 });
    expect(await httpOf(guard)).toBeUndefined();
    // A deadline 100 ms away: the request ends with the budget (less than the client's 275 ms), not after it.
    const cut = await httpOf(guard, undefined, { untilMs: Date.now() + 100 });
    expect(cut?.requestTimeout).toBeGreaterThan(100);
    expect(cut?.requestTimeout).toBeLessThanOrEqual(125);
    // A longer budget (a large value, a caller waiting out a slow DynamoDB) is not cut at the client's timeout.
    const longer = await httpOf(guard, 3000);
    expect(longer?.requestTimeout).toBeGreaterThan(3000);
    // Without a timeout of the client's own (a client the caller gave), every request carries its bound.
    const signalled = await httpOf(new DynamoGuard({ ...settings, cancel: 'signal' }));
    expect(signalled?.abortSignal).toBeInstanceOf(AbortSignal);
    const unknown = await httpOf(new DynamoGuard({ ...settings, cancel: 'request-timeout' }));
    expect(unknown?.requestTimeout).toBeGreaterThan(250);
  });

  it.each([
    ['resolves its middleware once per command', {}, 0],
    ["resolves it per request when clientConfig says cacheMiddleware: false (the caller's choice stands)", { cacheMiddleware: false }, 5],
    // A legacy strategy adds its mode to the context's user agent on every request: shared once cached, it would grow without end.
    ["resolves it per request with a retry strategy of the caller's", { retryStrategy: { mode: 'legacy', retry: (next: (args: unknown) => unknown, args: unknown) => next(args) } as never }, 5],
  ])('the client the cache creates %s', async (_name, config, resolutions) => {
    const { cache } = await db.newCache({ clientConfig: { ...localClientConfig(db.endpoint), ...config }, memory: false });
    await cache.get('warm-up'); // the first request of each command resolves its stack
    const resolve = vi.spyOn(GetItemCommand.prototype, 'resolveMiddleware');
    try {
      for (let i = 0; i < 5; i++) expect(await cache.get(`k${i}`)).toBeUndefined();
      expect(resolve).toHaveBeenCalledTimes(resolutions);
    } finally {
      resolve.mockRestore();
    }
  });

  it('concurrent requests through the one resolved stack each get their own answer, also while requests with options drop it', async () => {
    const { cache: writer, tableName } = await db.newCache({ memory: false });
    const keys = Array.from({ length: 60 }, (_, i) => `key-${i}`);
    await Promise.all(keys.map((key) => writer.set(key, { key, n: key.length })));
    const { cache } = await db.newCache({ tableName, memory: false });
    await cache.get('warm-up');
    // Every third read carries a deadline near enough to be its own request timeout (options: the SDK drops its cached stack).
    const read = (key: string, i: number) => cache.get<{ key: string }>(key, i % 3 === 0 ? { deadline: Date.now() + 2000 } : {});
    for (let round = 0; round < 3; round++) {
      const values = await Promise.all(keys.map(read));
      expect(values.map((value) => value?.key)).toEqual(keys);
    }
    expect(cache.stats().errors).toBe(0);
  });

  it("a budget the deadline cuts short cancels the request at its end, not at the client's longer timeout", async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, memory: false, timeoutMs: 5000, deadlineMarginMs: 100, breaker: false });
    await cache.get('warm-up');
    proxy.setFaults({ latencyMs: 3000 });
    proxy.resetCounts();
    const { value, ms } = await elapsed(() => cache.get('k', { deadline: Date.now() + 500 }));
    expect(value).toBeUndefined();
    expect(ms).toBeLessThan(500);
    // Given up by the request's own timeout (the budget plus 25 ms), long before DynamoDB answers (3 s) or the client's 5 s.
    await vi.waitFor(() => expect(proxy.injected.get('abandoned')).toBe(1), { timeout: 1000 });
  });
});

describe('corrupt or foreign items are misses with one warning each', () => {
  const now = () => String(Math.floor(Date.now() / 1000) + 600);
  const cases: Array<[string, Record<string, unknown>]> = [
    ['expiry missing', { cached_value: { S: 'v' } }],
    ['expiry of the wrong type', { cached_value: { S: 'v' }, expires_at: { S: 'tomorrow' } }],
    ['value of the wrong type', { cached_value: { N: '1' }, expires_at: { N: now() } }],
    ['unknown encoding marker', { cached_value: { S: 'v' }, expires_at: { N: now() }, dc_enc: { S: 'klingon' } }],
    ['marker of the wrong type', { cached_value: { S: 'v' }, expires_at: { N: now() }, dc_enc: { N: '1' } }],
    ['JSON marker on invalid JSON', { cached_value: { S: '{"a":' }, expires_at: { N: now() }, dc_enc: { S: 'json' } }],
    ['JSON marker on binary', { cached_value: { B: new Uint8Array([1]) }, expires_at: { N: now() }, dc_enc: { S: 'json' } }],
    ['bytes marker on text', { cached_value: { S: 'v' }, expires_at: { N: now() }, dc_enc: { S: 'bytes' } }],
    ['plain binary with no marker', { cached_value: { B: new Uint8Array([1]) }, expires_at: { N: now() } }],
  ];

  it.each(cases)('%s', async (_name, attributes) => {
    const { cache, logger, tableName } = await db.newCache({ memory: false });
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: { S: 'bad' }, ...attributes } as never }));
    expect(await cache.get('bad')).toBeUndefined();
    expect(await cache.getOrSet('bad', async () => 'fresh')).toBe('fresh');
    expect(await cache.get('bad')).toBe('fresh');
    expect(cache.stats()).toMatchObject({ corruptItems: 2, errors: 2 });
    expect(logger.warnings).toHaveLength(2);
    expect(logger.warnings[0]!.message).toMatch(/unreadable/);
  });

  it('an item with no value (an earlier version released its lease on it) is a plain miss: no warning, not counted', async () => {
    const { cache, logger, tableName } = await db.newCache({ memory: false });
    for (const [id, extra] of [['empty', {}], ['old-lease', { dc_lease: { N: String(Date.now() + 60_000) }, dc_owner: { S: 'someone' } }]] as const) {
      await db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: { S: id }, expires_at: { N: now() }, ...extra } }));
      expect(await cache.get(id)).toBeUndefined();
      expect(await cache.getOrSet(id, async () => `fresh ${id}`)).toBe(`fresh ${id}`);
      expect(await cache.get(id)).toBe(`fresh ${id}`);
    }
    expect(cache.stats()).toMatchObject({ corruptItems: 0, errors: 0, leaseWaits: 0 });
    expect(logger.warnings).toHaveLength(0);
  });

  it('getMany skips a corrupt item and returns the others', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await cache.set('good', 1);
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: { S: 'bad' }, cached_value: { N: '1' }, expires_at: { N: now() } } }));
    expect(await cache.getMany(['good', 'bad'])).toEqual(new Map([['good', 1]]));
    expect(cache.stats().corruptItems).toBe(1);
  });
});

describe('faults no server produces on demand (aws-sdk-client-mock)', () => {
  it('getMany retries UnprocessedKeys until they are read', async () => {
    const client = new DynamoDBClient(localClientConfig('http://127.0.0.1:9'));
    const mock = mockClient(client);
    mock.on(GetItemCommand).resolves({}); // the namespace has never been flushed: no metadata item
    const item = (id: string) => ({ id: { S: id }, cached_value: { S: id.toUpperCase() }, expires_at: { N: String(Math.floor(Date.now() / 1000) + 60) } });
    const cache = new DynamoCache({ tableName: 'ttt', client, memory: false, logger: new Logger({ logLevel: 'SILENT' }) });
    mock
      .on(BatchGetItemCommand)
      .resolvesOnce({ Responses: { ttt: [item('a')] }, UnprocessedKeys: { ttt: { Keys: [{ id: { S: 'b' } }, { id: { S: 'c' } }] } } })
      .resolvesOnce({ Responses: { ttt: [item('b')] }, UnprocessedKeys: { ttt: { Keys: [{ id: { S: 'c' } }] } } })
      .resolvesOnce({ Responses: { ttt: [item('c')] } });
    const many = await cache.getMany(['a', 'b', 'c']);
    expect(many).toEqual(new Map([['a', 'A'], ['b', 'B'], ['c', 'C']]));
    expect(mock.commandCalls(BatchGetItemCommand)).toHaveLength(3);
    expect(mock.commandCalls(BatchGetItemCommand)[2]!.args[0].input.RequestItems?.ttt?.Keys).toEqual([{ id: { S: 'c' } }]);
    expect(cache.stats().retries).toBe(2);
  });
});

describe('logging through the Powertools logger', () => {
  it('the default logger is a Powertools Logger writing one structured warning per failure', async () => {
    const lines: string[] = [];
    const capture = (chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    };
    // The Powertools Logger's own Console writes warn() to stderr and info() to stdout.
    const spies = [vi.spyOn(process.stdout, 'write').mockImplementation(capture), vi.spyOn(process.stderr, 'write').mockImplementation(capture)];
    try {
      const cache = new DynamoCache({
        tableName: 'fail-open-test',
        clientConfig: localClientConfig(proxy.endpoint),
        memory: false,
        timeoutMs: 250,
        breaker: false,
        logger: new Logger({ serviceName: 'dynamo-cache-test' }),
      });
      proxy.setFaults({ throttleRate: 1 });
      expect(await cache.get('k')).toBeUndefined();
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const warnings = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 'WARN');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ service: 'dynamo-cache-test', operation: 'get', key: 'k', request: 'GetItem', failure: 'throttle', errorName: 'ProvisionedThroughputExceededException' });
  });
});

describe('circuit breaker', () => {
  it.each([
    ['throttling', { throttleRate: 1 }],
    ['dropped connections', { dropRate: 1 }],
  ] as const)(
    'with 100%% %s: no exception reaches a caller, each operation ends within its budget, the breaker opens, then closes with the values intact',
    async (_name, faults) => {
      const tableName = await db.newTable();
      const { cache: writer } = await db.newCache({ tableName });
      const values: Record<string, unknown> = { a: { n: 1, nested: [true, null] }, b: 'two', c: [3] };
      for (const [key, value] of Object.entries(values)) await writer.set(key, value);
      const { cache, logger } = await db.newCache({
        tableName,
        endpoint: proxy.endpoint,
        memory: false,
        timeoutMs: 200,
        breaker: { consecutiveFailures: 3, halfOpenAfterMs: 300 },
      });
      expect(await cache.get('a')).toEqual(values.a); // a running environment: it knows the namespace generation
      proxy.setFaults(faults);
      const operations = [
        () => cache.get('a'),
        () => cache.set('x', 1),
        () => cache.getOrSet('b', async () => 'from upstream'),
        () => cache.getMany(['a', 'b']),
        () => cache.delete('x'),
      ];
      const durations: number[] = [];
      for (let round = 0; round < 3; round++) {
        for (const operation of operations) durations.push((await elapsed(operation)).ms);
      }
      expect(Math.max(...durations)).toBeLessThan(200 + SLACK_MS);
      expect(cache.stats()).toMatchObject({ circuit: 'open', circuitOpened: 1 });
      expect(cache.stats().circuitRejections).toBeGreaterThan(0);
      expect(logger.warnings.some((w) => /circuit opened/.test(w.message))).toBe(true);
      const seen = proxy.count();
      expect(await cache.get('a')).toBeUndefined(); // skipped: the open circuit sends nothing
      expect(proxy.count()).toBe(seen);

      proxy.setFaults({});
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(await cache.get('a')).toEqual(values.a); // the half-open probe succeeds
      expect(cache.stats().circuit).toBe('closed');
      for (const [key, value] of Object.entries(values)) expect(await cache.get(key)).toEqual(value);
    },
  );

  it('throttling of one key (a hot partition) does not open the circuit; throttling across keys does', async () => {
    const tableName = await db.newTable();
    const { cache: writer } = await db.newCache({ tableName });
    for (const key of ['hot', 'a', 'b', 'c']) await writer.set(key, key);
    const { cache } = await db.newCache({ tableName, endpoint: proxy.endpoint, memory: false, timeoutMs: 150, breaker: { consecutiveFailures: 3, halfOpenAfterMs: 60_000 } });
    expect(await cache.get('hot')).toBe('hot'); // a running environment: it knows the namespace generation
    proxy.setFaults({ throttleRate: 1 });
    for (let i = 0; i < 5; i++) expect(await cache.get('hot')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ circuit: 'closed', circuitOpened: 0, throttles: 5 });
    for (const key of ['a', 'b']) await cache.get(key);
    expect(cache.stats()).toMatchObject({ circuit: 'open', circuitOpened: 1 }); // three keys throttled in a row: the table's limit
  });

  it('a batch whose items stay unprocessed until its budget ends failed for throttling, not a timeout', async () => {
    const client = new DynamoDBClient(localClientConfig('http://127.0.0.1:9'));
    const mock = mockClient(client);
    mock.on(GetItemCommand).resolves({});
    mock.on(BatchGetItemCommand).callsFake(async (input: { RequestItems: Record<string, { Keys: unknown[] }> }) => ({ UnprocessedKeys: input.RequestItems }));
    const cache = new DynamoCache({ tableName: 'ttt', client, memory: false, timeoutMs: 150, logger: new Logger({ logLevel: 'SILENT' }) });
    expect(await cache.getMany(['a', 'b'])).toEqual(new Map());
    expect(cache.stats()).toMatchObject({ throttles: 1, timeouts: 0 });
  });

  it('client errors such as a ValidationException do not open the circuit', async () => {
    const { cache, logger } = await cacheBehindProxy(await db.newTable(), { breaker: { consecutiveFailures: 2, halfOpenAfterMs: 60_000 } });
    proxy.setFaults({ validationErrorRate: 1, operations: ['PutItem'] });
    for (let i = 0; i < 4; i++) expect(await cache.set(`k-${i}`, 1)).toBe(false);
    expect(proxy.count('PutItem')).toBe(4); // not retried
    expect(logger.warnings.every((w) => w.fields.errorName === 'ValidationException' && w.fields.failure === 'client')).toBe(true);
    expect(cache.stats()).toMatchObject({ circuit: 'closed', circuitOpened: 0, errors: 4 });
  });
});
