import { describe, expect, it, vi } from 'vitest';
import type { DynamoCache } from '../src/cache.ts';
import type { DeadlineSource } from '../src/resilience/call-options.ts';
import { LeaseWaitTimeoutError } from '../src/errors.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

/** A Lambda context whose invocation ends `remainingMs` from now. */
function lambdaContextWith(remainingMs: number): DeadlineSource {
  const end = Date.now() + remainingMs;
  return { getRemainingTimeInMillis: () => end - Date.now() };
}

/** A cache on `tableName` whose lease is held forever by another environment. */
async function stuckLease(key: string, options: { staleValue?: boolean } = {}): Promise<{ tableName: string }> {
  const tableName = await db.newTable();
  const { cache: holder } = await db.newCache({ tableName, memory: false });
  if (options.staleValue) {
    await holder.set(key, 'stale but usable', { ttlSeconds: 0.01, staleIfErrorSeconds: 600 });
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  void holder.getOrSet(key, () => new Promise<never>(() => {}), { staleIfErrorSeconds: 600 });
  await vi.waitFor(() => expect(holder.stats().leaseWins).toBe(1));
  return { tableName };
}

describe('the invocation deadline', () => {
  it('with a stuck lease holder and 1,500 ms left, every waiter gives up before the deadline (less the margin) and fetches itself', async () => {
    const { tableName } = await stuckLease('k');
    const waiters = await Promise.all(Array.from({ length: 10 }, async () => (await db.newCache({ tableName, memory: false })).cache));
    const outcomes = await Promise.all(
      waiters.map(async (cache) => {
        const context = lambdaContextWith(1500);
        const value = await cache.getOrSet('k', async () => 'fetched in time', { deadline: context });
        return { value, remaining: context.getRemainingTimeInMillis() };
      }),
    );
    for (const { value, remaining } of outcomes) {
      expect(value).toBe('fetched in time');
      expect(remaining).toBeGreaterThan(0); // completed before the deadline
      expect(remaining).toBeLessThan(1500 - 500 + 250); // it did wait (up to the 500 ms margin), it did not give up at once
    }
    expect(waiters.reduce((n, cache) => n + cache.stats().leaseWaitTimeouts, 0)).toBe(10);
  });

  it('when the deadline ends the wait, a stale value within staleIfErrorSeconds is answered instead of fetching', async () => {
    const { tableName } = await stuckLease('k', { staleValue: true });
    const { cache } = await db.newCache({ tableName, memory: false });
    const fetcher = vi.fn(async () => 'fetched');
    const context = lambdaContextWith(1000);
    expect(await cache.getOrSet('k', fetcher, { deadline: context, staleIfErrorSeconds: 600 })).toBe('stale but usable');
    expect(fetcher).not.toHaveBeenCalled();
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(300);
  });

  it("onWaitTimeout: 'throw' applies when the deadline ends the wait too", async () => {
    const { tableName } = await stuckLease('k');
    const { cache } = await db.newCache({ tableName, memory: false, lease: { onWaitTimeout: 'throw' } });
    await expect(cache.getOrSet('k', async () => 'x', { deadline: Date.now() + 800 })).rejects.toBeInstanceOf(LeaseWaitTimeoutError);
  });

  it('a DynamoDB request never outlives the deadline: a slow table is cut at it, without opening the breaker', async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 5000, deadlineMarginMs: 100 });
    await cache.get('warm-up'); // reads the namespace generation while DynamoDB is fast
    proxy.setFaults({ latencyMs: 3000 });
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      expect(await cache.get('k', { deadline: Date.now() + 500 })).toBeUndefined();
      const elapsed = performance.now() - started;
      expect(elapsed).toBeLessThan(500);
      expect(elapsed).toBeGreaterThan(300); // it waited for DynamoDB until the deadline less the margin
    }
    expect(cache.stats()).toMatchObject({ circuit: 'closed', errors: 0, timeouts: 0, deadlineSkips: 6 });
  });

  it('with no time left before the deadline, DynamoDB is not called at all and the fetcher runs', async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint });
    await cache.get('warm-up');
    proxy.resetCounts();
    expect(await cache.getOrSet('k', async () => 'fetched', { deadline: lambdaContextWith(300) })).toBe('fetched'); // 300 ms < the 500 ms margin
    expect(proxy.count()).toBe(0);
    expect(cache.stats().deadlineSkips).toBeGreaterThan(0);
  });

  it('wrap takes each call\'s deadline from its arguments', async () => {
    const { tableName } = await stuckLease('user:1');
    const { cache } = await db.newCache({ tableName, memory: false });
    const load = cache.wrap(async (id: string, _context: DeadlineSource) => `user ${id}`, { key: (id) => `user:${id}`, callOptions: (_id, context) => ({ deadline: context }) });
    const context = lambdaContextWith(1200);
    expect(await load('1', context)).toBe('user 1');
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
  });
});

describe("the caller's AbortSignal", () => {
  it('an abort during a lease wait ends it at once and rejects with the reason', async () => {
    const { tableName } = await stuckLease('k');
    const { cache } = await db.newCache({ tableName, memory: false, lease: { waitMs: 10_000 } });
    const controller = new AbortController();
    const fetcher = vi.fn(async () => 'x');
    const started = performance.now();
    const pending = cache.getOrSet('k', fetcher, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client went away')), 200);
    await expect(pending).rejects.toThrow('client went away');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(fetcher).not.toHaveBeenCalled();
  });

  it('an abort during a slow DynamoDB request cancels it and rejects at once; an aborted signal rejects before any request', async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 5000 });
    await cache.get('warm-up');
    proxy.setFaults({ latencyMs: 3000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 150);
    const started = performance.now();
    await expect(cache.get('k', { signal: controller.signal })).rejects.toThrow('stop');
    expect(performance.now() - started).toBeLessThan(1000);
    proxy.resetCounts();
    await expect(cache.set('k', 1, { signal: controller.signal })).rejects.toThrow('stop');
    expect(proxy.count()).toBe(0);
    expect(cache.stats()).toMatchObject({ errors: 0, circuit: 'closed' });
  });

  it('one caller aborting never cancels the answer another caller of the same key waits for', async () => {
    const { cache } = await db.newCache({ memory: false });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fetcher = vi.fn(async () => {
      await gate;
      return 'shared value';
    });
    const first = new AbortController();
    const second = new AbortController();
    const a = cache.getOrSet('k', fetcher, { signal: first.signal });
    const b = cache.getOrSet('k', fetcher, { signal: second.signal });
    await vi.waitFor(() => expect(fetcher).toHaveBeenCalledTimes(1));
    first.abort(new Error('first gave up'));
    await expect(a).rejects.toThrow('first gave up');
    release();
    expect(await b).toBe('shared value');
    expect(fetcher).toHaveBeenCalledTimes(1);
  });
});

describe('onResult: where an answer came from', () => {
  it('reports fetcher, memory, dynamodb, stale and none', async () => {
    const { cache, tableName } = await db.newCache();
    const { cache: other } = await db.newCache({ tableName, memory: false });
    const seen: string[] = [];
    const onResult = (result: { source: string; fromCache: boolean; key: string }) => seen.push(`${result.key}:${result.source}:${result.fromCache}`);
    await cache.getOrSet('a', async () => 1, { onResult, staleWhileRevalidateSeconds: 60, ttlSeconds: 0.05 });
    await cache.getOrSet('a', async () => 2, { onResult });
    await other.get('a', { onResult });
    await other.get('missing', { onResult });
    await new Promise((resolve) => setTimeout(resolve, 80));
    const holder = other as DynamoCache;
    void holder.getOrSet('a', () => new Promise<never>(() => {}), { staleWhileRevalidateSeconds: 60 });
    await vi.waitFor(() => expect(holder.stats().leaseWins).toBe(1));
    const { cache: third } = await db.newCache({ tableName, memory: false });
    await third.getOrSet('a', async () => 3, { onResult, staleWhileRevalidateSeconds: 60 });
    expect(seen).toEqual(['a:fetcher:false', 'a:memory:true', 'a:dynamodb:true', 'missing:none:false', 'a:stale:true']);
  });
});

describe('an abort never leaves a lease behind', () => {
  it('a caller that aborts while its lease write is in flight (applied by DynamoDB, answer not yet back) gives the lease back', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, endpoint: proxy.endpoint });
    await cache.get('warm-up');
    const controller = new AbortController();
    // DynamoDB applies the lease write at once, but its answer is held: the caller aborts before it arrives.
    proxy.setFaults({ responseDelayMs: 300, operations: ['PutItem'] });
    const pending = cache.acquire('k', { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('gone')), 100);
    await expect(pending).rejects.toThrow('gone');
    proxy.setFaults({});
    await new Promise((resolve) => setTimeout(resolve, 400)); // the delayed lease write lands, then the release
    const { cache: next } = await db.newCache({ tableName, memory: false, lease: { waitMs: 5000 } });
    const started = performance.now();
    expect(await next.getOrSet('k', async () => 'fetched')).toBe('fetched');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(next.stats().leaseWaits).toBe(0);
  });
});
