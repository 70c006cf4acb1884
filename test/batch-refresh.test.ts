import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError, InvalidValueError } from '../src/errors.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import type { FetchManyContext } from '../src/refresh/fetch-context.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

afterEach(() => {
  vi.useRealTimers();
});

/** `n` execution environments (a cache, memory tier and SDK client each) on one table, through the fault proxy. */
async function fleet(n: number, options: DynamoCacheOptions = {}): Promise<DynamoCache[]> {
  const tableName = options.tableName ?? (await db.newTable());
  return Promise.all(Array.from({ length: n }, async () => (await db.newCache({ endpoint: proxy.endpoint, ...options, tableName })).cache));
}

const keysFrom = (from: number, count: number) => Array.from({ length: count }, (_, i) => `item:${from + i}`);
const valueOf = (key: string) => ({ key, price: key.length });

/** A `fetchMany` that records each call's keys and answers every key. */
function upstream(delayMs = 0) {
  const calls: string[][] = [];
  return {
    calls,
    fetchMany: async (keys: string[]) => {
      calls.push([...keys]);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return new Map(keys.map((key) => [key, valueOf(key)]));
    },
  };
}

describe('getOrSetMany', () => {
  it('100 keys with 60 cached and 40 missing: one BatchGetItem, one fetchMany call with the 40, all 100 answered', async () => {
    const [writer, reader] = await fleet(2);
    const keys = keysFrom(0, 100);
    expect(await writer!.setMany(new Map(keys.slice(0, 60).map((key) => [key, valueOf(key)])), { ttlSeconds: 600 })).toBe(true);
    proxy.resetCounts();
    const api = upstream();
    const result = await reader!.getOrSetMany(keys, api.fetchMany, { ttlSeconds: 600 });
    expect(api.calls).toEqual([keys.slice(60)]);
    expect([...result.keys()]).toEqual(keys);
    for (const key of keys) expect(result.get(key)).toEqual(valueOf(key));
    // One read for the 100 keys; then a lease and a value for each of the 40 (conditional writes, one item each).
    expect(proxy.count('BatchGetItem')).toBe(1);
    expect(proxy.count('GetItem')).toBe(1); // the namespace generation, read once by each environment
    expect(proxy.count('PutItem')).toBe(80);
    expect(reader!.stats()).toMatchObject({ dynamoHits: 60, misses: 40, fetches: 40, leaseWins: 40, writes: 40 });
    // Now everything is cached: memory answers the next call, with no request and no fetch.
    proxy.resetCounts();
    expect((await reader!.getOrSetMany(keys, api.fetchMany)).size).toBe(100);
    expect(api.calls).toHaveLength(1);
    expect(proxy.count()).toBe(0);
  });

  it('20 environments asking for overlapping sets at once fetch each missing key exactly once in total', async () => {
    // One in-process dynalite serves the 20 environments here, a few hundred requests a second on a loaded machine:
    // the leases outlast that slowness, which is this machine's, not what the test is about.
    const envs = await fleet(20, { lease: { ttlMs: 30_000, waitMs: 20_000 } });
    const universe = keysFrom(0, 100);
    await envs[0]!.setMany(new Map(universe.filter((_, i) => i % 3 === 0).map((key) => [key, valueOf(key)])));
    const fetched: string[] = [];
    const results = await Promise.all(
      envs.map((env, n) => {
        // Each environment wants 40 keys, starting at its own offset: every key is wanted by several of them.
        const wanted = Array.from({ length: 40 }, (_, i) => universe[(n * 7 + i) % 100]!);
        return env
          .getOrSetMany(wanted, async (keys) => {
            fetched.push(...keys);
            await new Promise((resolve) => setTimeout(resolve, 30));
            return Object.fromEntries(keys.map((key) => [key, valueOf(key)]));
          })
          .then((result) => ({ wanted, result }));
      }),
    );
    const missing = universe.filter((_, i) => i % 3 !== 0);
    const wantedMissing = new Set(results.flatMap(({ wanted }) => wanted).filter((key) => missing.includes(key)));
    expect(fetched.sort()).toEqual([...wantedMissing].sort()); // each once: no duplicates
    for (const { wanted, result } of results) {
      expect(result.size).toBe(40);
      for (const key of wanted) expect(result.get(key)).toEqual(valueOf(key));
    }
    const leaseWaits = envs.reduce((sum, env) => sum + env.stats().leaseWaits, 0);
    expect(leaseWaits).toBeGreaterThan(0); // some keys were another environment's to fetch
    expect(envs.reduce((sum, env) => sum + env.stats().leaseWaitTimeouts, 0)).toBe(0);
  });

  it("keys another environment failed to fetch become this one's, fetched together in one more fetchMany call", async () => {
    const [holder, waiter] = await fleet(2, { lease: { ttlMs: 30_000, waitMs: 10_000 } });
    const keys = keysFrom(0, 5);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const failing = holder!.getOrSetMany(keys, async () => {
      await gate;
      throw new Error('upstream down');
    });
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(5));
    const api = upstream();
    const waited = waiter!.getOrSetMany([...keys, 'own'], api.fetchMany);
    await vi.waitFor(() => expect(waiter!.stats().leaseWaits).toBe(5));
    expect(api.calls).toEqual([['own']]); // its own key at once: it does not wait for the others first
    release();
    await expect(failing).rejects.toThrow('upstream down');
    expect((await waited).size).toBe(6);
    expect(api.calls).toEqual([['own'], keys]);
    expect(waiter!.stats().leaseWaitTimeouts).toBe(0);
  });

  it('keys fetchMany leaves out are "not found": absent from the result, and cached with negativeTtlSeconds', async () => {
    const [cache] = await fleet(1, { memory: false });
    const calls: string[][] = [];
    const fetchMany = async (keys: string[]) => {
      calls.push(keys);
      return { 'user:1': { name: 'Ada' }, 'user:2': undefined };
    };
    const first = await cache!.getOrSetMany(['user:1', 'user:2', 'user:3'], fetchMany, { negativeTtlSeconds: 60 });
    expect([...first]).toEqual([['user:1', { name: 'Ada' }]]);
    const second = await cache!.getOrSetMany(['user:1', 'user:2', 'user:3'], fetchMany, { negativeTtlSeconds: 60 });
    expect([...second]).toEqual([['user:1', { name: 'Ada' }]]);
    expect(calls).toEqual([['user:1', 'user:2', 'user:3']]);
    expect(cache!.stats().negativeHits).toBe(2);
  });

  it('UnprocessedKeys are retried within the budget: the cached keys are still found', async () => {
    const [writer, reader] = await fleet(2);
    const keys = keysFrom(0, 100);
    await writer!.setMany(new Map(keys.slice(0, 60).map((key) => [key, valueOf(key)])));
    proxy.setFaults({ unprocessedRate: 0.5, operations: ['BatchGetItem'] });
    const api = upstream();
    const result = await reader!.getOrSetMany(keys, api.fetchMany);
    expect(api.calls).toEqual([keys.slice(60)]);
    expect(result.size).toBe(100);
    expect(proxy.injected.get('unprocessed')).toBeGreaterThan(0);
    expect(proxy.count('BatchGetItem')).toBeGreaterThan(1);
  });

  it("fails open per key: with DynamoDB's reads throttled, every key is fetched, in one call, and answered", async () => {
    const [cache] = await fleet(1, { timeoutMs: 300, breaker: false, retry: { maxAttempts: 2 } });
    const keys = keysFrom(0, 30);
    proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] });
    const api = upstream();
    const result = await cache!.getOrSetMany(keys, api.fetchMany);
    expect(api.calls).toEqual([keys]);
    expect(result.size).toBe(30);
    expect(cache!.stats().throttles).toBeGreaterThan(0);
  });

  it('5 cold environments while the namespace item is throttled for a moment: they wait for it, as getOrSet does, and fetch each key once', async () => {
    const envs = await fleet(5, { timeoutMs: 300 });
    // Every cold environment reads #dc:meta with GetItem; the batch's own reads are BatchGetItem.
    proxy.setFaults({ throttleRate: 1, operations: ['GetItem'] });
    setTimeout(() => proxy.setFaults({}), 400);
    const api = upstream();
    const results = await Promise.all(envs.map((env) => env.getOrSetMany(['a', 'b'], api.fetchMany, { ttlSeconds: 300 })));
    expect(results.map((result) => Object.fromEntries(result))).toEqual(Array.from({ length: 5 }, () => ({ a: valueOf('a'), b: valueOf('b') })));
    expect(api.calls.flat().sort()).toEqual(['a', 'b']);
    expect(envs.reduce((n, env) => n + env.stats().uncoordinatedFetches, 0)).toBe(0);
  });

  it('a fetchMany that throws rejects with its error and gives every lease back; with a stale value for every key, those are answered', async () => {
    const [cache, other] = await fleet(2, { lease: { ttlMs: 30_000 }, staleIfErrorSeconds: 60 });
    const failing = async () => {
      throw new Error('upstream 503');
    };
    await expect(cache!.getOrSetMany(['a', 'b'], failing)).rejects.toThrow('upstream 503');
    // The leases went back: another environment fetches at once rather than waiting 30 s for them.
    expect([...(await other!.getOrSetMany(['a', 'b'], upstream().fetchMany, { ttlSeconds: 1 }))].length).toBe(2);
    expect(other!.stats().leaseWaits).toBe(0);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 1500 });
    const stale = await cache!.getOrSetMany(['a', 'b'], failing);
    expect(stale.get('a')).toEqual(valueOf('a'));
    expect(cache!.stats().staleIfError).toBe(2);
    // Not every key has a stale value: the error stands.
    await expect(cache!.getOrSetMany(['a', 'c'], failing)).rejects.toThrow('upstream 503');
  });

  it('hands fetchMany the previous values, the signal, setTtl and noStore', async () => {
    const [cache] = await fleet(1, { memory: false, staleIfErrorSeconds: 60 });
    await cache!.setMany({ a: { v: 1 }, b: { v: 1 } }, { ttlSeconds: 1 });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 1500 });
    let seen: FetchManyContext<{ v: number }> | undefined;
    const result = await cache!.getOrSetMany<{ v: number }>(['a', 'b', 'c'], async (keys, context) => {
      seen = context;
      context.setTtl(120);
      context.noStore('b');
      expect(() => context.noStore('z')).toThrow(InvalidOptionsError);
      return new Map(keys.map((key) => [key, { v: (context.previous.get(key)?.value.v ?? 0) + 1 }]));
    });
    expect([...seen!.previous.keys()].sort()).toEqual(['a', 'b']);
    expect(seen!.signal.aborted).toBe(false);
    expect(Object.fromEntries(result)).toEqual({ a: { v: 2 }, b: { v: 2 }, c: { v: 1 } });
    const stored = await cache!.inspect('a');
    expect(stored!.freshUntil!.getTime() - Date.now()).toBeGreaterThan(100_000);
    expect(await cache!.inspect('b')).toMatchObject({ state: 'stale', value: { v: 1 } }); // noStore: left as it was
  });

  it("a bad argument to the context is the caller's error: it rejects with stale values at hand, and the leases go back unmarked", async () => {
    const [cache, other] = await fleet(2, { staleIfErrorSeconds: 300 });
    await cache!.setMany({ a: 1, b: 2 }, { ttlSeconds: 1 });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 1100 });
    const buggy = async (_keys: string[], context: FetchManyContext) => {
      context.noStore('c'); // not one of the keys: a bug in the caller's code
      return { a: 10, b: 20 };
    };
    await expect(cache!.getOrSetMany(['a', 'b'], buggy)).rejects.toThrow(InvalidOptionsError);
    expect(cache!.stats().staleIfError).toBe(0);
    // Leases marked failed would have another environment answer the stale values for a second; it fetches.
    expect(Object.fromEntries(await other!.getOrSetMany(['a', 'b'], upstream().fetchMany))).toEqual({ a: valueOf('a'), b: valueOf('b') });
  });

  it('ttlSeconds may be a function of each value and its key', async () => {
    const [cache] = await fleet(1, { memory: false });
    await cache!.getOrSetMany(['short', 'long'], upstream().fetchMany, { ttlSeconds: (_value, key) => (key === 'short' ? 5 : 500) });
    const left = async (key: string) => ((await cache!.inspect(key))!.freshUntil!.getTime() - Date.now()) / 1000;
    expect(await left('short')).toBeLessThanOrEqual(5);
    expect(await left('long')).toBeGreaterThan(400);
  });

  it('a value that cannot be stored is an InvalidValueError naming its key; the other keys are stored', async () => {
    const [cache] = await fleet(1, { memory: false });
    await expect(cache!.getOrSetMany(['ok', 'bad'], async () => ({ ok: 1, bad: new Date() }))).rejects.toThrow(/"bad" cannot be stored/);
    expect(await cache!.get('ok')).toBe(1);
    await expect(cache!.getOrSetMany(['x'], async () => [['x', 1]] as never)).rejects.toThrow(InvalidValueError);
    // Its lease went back with the error.
    expect(await cache!.getOrSetMany(['x'], async () => ({ x: 2 }))).toEqual(new Map([['x', 2]]));
    expect(cache!.stats().leaseWaits).toBe(0);
  });

  it("works through encryption, compression, hashed keys and a flushed namespace, as getOrSet does", async () => {
    const options: DynamoCacheOptions = {
      namespace: 'orders',
      encryption: { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' },
      compression: { thresholdBytes: 0 },
      hashKeys: { secret: randomBytes(32) },
    };
    const [writer, reader] = await fleet(2, options);
    await writer!.set('stale-generation', 'old');
    expect(await writer!.clear()).toBe(true);
    const keys = [...keysFrom(0, 10), 'stale-generation'];
    await writer!.setMany(new Map(keys.slice(0, 5).map((key) => [key, valueOf(key)])));
    const api = upstream();
    const result = await reader!.getOrSetMany(keys, api.fetchMany);
    expect(api.calls).toEqual([keys.slice(5)]);
    expect(result.get('stale-generation')).toEqual(valueOf('stale-generation'));
    for (const key of keys) expect(result.get(key)).toEqual(valueOf(key));
    expect(reader!.stats().corruptItems).toBe(0);
  });

  it('a caller that aborts while waiting for another environment rejects, and the leases it won go back', async () => {
    const [holder, waiter, third] = await fleet(3, { lease: { ttlMs: 30_000, waitMs: 10_000 } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = holder!.getOrSetMany(['held'], async (keys) => {
      await gate;
      return Object.fromEntries(keys.map((key) => [key, 'from the holder']));
    });
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    const controller = new AbortController();
    const waiting = waiter!.getOrSetMany(['held', 'mine'], upstream().fetchMany, { signal: controller.signal });
    await vi.waitFor(() => expect(waiter!.stats().leaseWaits).toBe(1));
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    release();
    expect(await held).toEqual(new Map([['held', 'from the holder']]));
    // 'mine' was fetched and stored before the abort (its own lease): nothing left for anyone to wait on.
    expect((await third!.getOrSetMany(['mine'], upstream().fetchMany)).get('mine')).toEqual(valueOf('mine'));
    expect(third!.stats().leaseWaits).toBe(0);
  });

  it('checks its arguments and options', async () => {
    const [cache] = await fleet(1);
    await expect(cache!.getOrSetMany('a' as never, upstream().fetchMany)).rejects.toThrow(/needs an array of keys/);
    await expect(cache!.getOrSetMany(['a', ''], upstream().fetchMany)).rejects.toThrow(/key/);
    await expect(cache!.getOrSetMany(['a'], undefined as never)).rejects.toThrow(/needs a fetchMany function/);
    await expect(cache!.getOrSetMany(['a'], upstream().fetchMany, { earlyRefresh: true } as never)).rejects.toThrow(/Unknown option "earlyRefresh"/);
    await expect(cache!.getOrSetMany(['a'], upstream().fetchMany, { ttl: 5 } as never)).rejects.toThrow(/did you mean "ttlSeconds"/);
    expect(await cache!.getOrSetMany([], upstream().fetchMany)).toEqual(new Map());
  });

  it('tells onResult where each answer came from', async () => {
    const [cache] = await fleet(1);
    await cache!.set('cached', 1);
    const sources: Record<string, string> = {};
    await cache!.getOrSetMany(['cached', 'fetched'], upstream().fetchMany, { onResult: ({ key, source }) => (sources[key] = source) });
    expect(sources).toEqual({ cached: 'memory', fetched: 'fetcher' });
  });

  it('a disabled cache calls fetchMany with every key', async () => {
    const { cache } = await db.newCache({ disabled: true });
    const api = upstream();
    expect((await cache.getOrSetMany(['a', 'b', 'a'], api.fetchMany)).size).toBe(2);
    expect(api.calls).toEqual([['a', 'b']]);
    // Its context knows those keys (an outside review: noStore('b') threw with the kill switch on).
    const answered = await cache.getOrSetMany(['a', 'b'], (keys, context) => {
      context.noStore('b');
      return new Map(keys.map((key) => [key, key.toUpperCase()]));
    });
    expect([...answered]).toEqual([['a', 'A'], ['b', 'B']]);
  });
});
