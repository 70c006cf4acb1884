import { randomBytes } from 'node:crypto';
import { GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OriginalCacheService } from '../bench/baselines/original-cache-service.ts';
import type { DynamoCache, GetOrSetOptions } from '../src/cache.ts';
import { FAILED_REFRESH_RETRY_MS } from '../src/refresh/coordinator.ts';
import { LeaseWaitTimeoutError } from '../src/errors.ts';
import { shouldRefreshEarly } from '../src/refresh/freshness.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

/** `n` simulated execution environments: separate caches, memory tiers and SDK clients on one table. */
async function fleet(n: number, tableName: string, options: DynamoCacheOptions = {}): Promise<DynamoCache[]> {
  return Promise.all(Array.from({ length: n }, async () => (await db.newCache({ tableName, ...options })).cache));
}

const sum = (caches: DynamoCache[], counter: 'fetches' | 'leaseWins' | 'leaseWaits' | 'staleHits' | 'leaseWaitTimeouts' | 'earlyRefreshes' | 'staleIfError' | 'uncoordinatedFetches') =>
  caches.reduce((total, cache) => total + cache.stats()[counter], 0);

/** An upstream that counts its calls and answers after `delayMs`. */
function upstream(delayMs: number) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    fetch: async () => {
      const n = ++calls;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return { token: `token-${n}` };
    },
  };
}

class TooManyRequests extends Error {
  override name = 'TooManyRequests';
  readonly status = 429;
}

describe('cross-environment lease', () => {
  it('50 environments missing one key at once: the fetcher runs exactly once and all 50 get its value', async () => {
    const tableName = await db.newTable();
    const caches = await fleet(50, tableName);
    const api = upstream(100);
    const results = await Promise.all(caches.map((cache) => cache.getOrSet('hot', api.fetch, { ttlSeconds: 60 })));
    expect(api.calls).toBe(1);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['token-1']));
    expect(sum(caches, 'leaseWins')).toBe(1);
    expect(sum(caches, 'leaseWaits')).toBeGreaterThan(0);
  });

  it('with the lease turned off the same stampede calls the upstream from every environment', async () => {
    const tableName = await db.newTable();
    const caches = await fleet(50, tableName, { lease: false });
    // The upstream answers once all 50 have asked (or after 3 s), so no environment can find another's value first.
    let calls = 0;
    let allAsked!: () => void;
    const everyone = new Promise<void>((resolve) => (allAsked = resolve));
    const fallback = setTimeout(allAsked, 3000);
    const fetcher = async () => {
      if (++calls === 50) allAsked();
      await everyone;
      return { token: `token-${calls}` };
    };
    await Promise.all(caches.map((cache) => cache.getOrSet('hot', fetcher, { ttlSeconds: 60 })));
    clearTimeout(fallback);
    expect(calls).toBe(50);
    expect(sum(caches, 'leaseWins')).toBe(0);
  });

  it('a lease holder that never finishes is replaced once its lease expires; nobody waits past the bound', async () => {
    const tableName = await db.newTable();
    const lease = { ttlMs: 300, waitMs: 3000 };
    const [holder, ...others] = await fleet(4, tableName, { lease });
    void holder!.getOrSet('k', () => new Promise<never>(() => {})); // hangs forever, holding the lease
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    const api = upstream(20);
    const started = performance.now();
    const results = await Promise.all(others.map((cache) => cache.getOrSet('k', api.fetch)));
    const elapsed = performance.now() - started;
    expect(api.calls).toBe(1);
    expect(results.map((r) => r.token)).toEqual(['token-1', 'token-1', 'token-1']);
    expect(sum(others, 'leaseWaitTimeouts')).toBe(0); // taken over after ~300 ms, well inside the 3 s wait
    expect(elapsed).toBeLessThan(lease.waitMs);
  });

  it('a waiter whose bound runs out fetches itself (liveness), or throws with onWaitTimeout: throw', async () => {
    const tableName = await db.newTable();
    const [holder, patient, strict] = await fleet(3, tableName, { lease: { ttlMs: 60_000, waitMs: 200 } });
    void holder!.getOrSet('k', () => new Promise<never>(() => {}));
    void holder!.getOrSet('k2', () => new Promise<never>(() => {}));
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(2));
    const started = performance.now();
    expect(await patient!.getOrSet('k', async () => 'fetched anyway')).toBe('fetched anyway');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(waited).toBeLessThan(200 + 1000);
    expect(patient!.stats().leaseWaitTimeouts).toBe(1);
    const strictFetcher = vi.fn(async () => 'never');
    await expect(strict!.getOrSet('k2', strictFetcher, { lease: { onWaitTimeout: 'throw', waitMs: 100 } })).rejects.toBeInstanceOf(LeaseWaitTimeoutError);
    expect(strictFetcher).not.toHaveBeenCalled();
  });

  it('a holder whose fetch fails gives the lease back, so a waiter takes over without waiting for expiry', async () => {
    const tableName = await db.newTable();
    const [first, second] = await fleet(2, tableName, { lease: { ttlMs: 30_000, waitMs: 5000 } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const failing = first!.getOrSet('k', async () => {
      await gate;
      throw new TooManyRequests('upstream 429');
    });
    await vi.waitFor(() => expect(first!.stats().leaseWins).toBe(1));
    const waiting = second!.getOrSet('k', async () => 'second try');
    setTimeout(release, 50);
    await expect(failing).rejects.toBeInstanceOf(TooManyRequests);
    expect(await waiting).toBe('second try');
    expect(second!.stats().leaseWaitTimeouts).toBe(0);
  });

  it('a lease that outlived its value (deleted, or removed by TTL first) holds nobody up', async () => {
    const { cache } = await db.newCache({ memory: false, lease: { ttlMs: 300, waitMs: 3000 } });
    vi.useFakeTimers({ toFake: ['Date'] });
    expect(await cache.getOrSet('k', async () => 'v1', { ttlSeconds: 1 })).toBe('v1');
    vi.setSystemTime(Date.now() + 1100);
    expect(await cache.getOrSet('k', async () => 'v2', { ttlSeconds: 1 })).toBe('v2'); // its lease names v1's freshness
    vi.setSystemTime(Date.now() + 400); // that lease is over, its item still there
    expect(await cache.delete('k')).toBe(true);
    expect(await cache.getOrSet('k', async () => 'v3', { ttlSeconds: 60 })).toBe('v3');
    expect(cache.stats()).toMatchObject({ leaseWaits: 0, leaseWaitTimeouts: 0 });
  });

  it('a waiter whose polls are throttled keeps waiting for the holder instead of calling the upstream itself', async () => {
    const proxy = await FaultProxy.start(db.endpoint);
    try {
      const tableName = await db.newTable();
      const [holder] = await fleet(1, tableName);
      const { cache: waiter } = await db.newCache({ tableName, endpoint: proxy.endpoint, timeoutMs: 200, breaker: false, lease: { waitMs: 10_000 } });
      await waiter.get('warm-up');
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const holding = holder!.getOrSet('k', async () => {
        await gate;
        return 'from the holder';
      });
      await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
      const waiterFetch = vi.fn(async () => 'from the waiter');
      const waiting = waiter.getOrSet('k', waiterFetch);
      await vi.waitFor(() => expect(waiter.stats().leaseWaits).toBe(1));
      proxy.setFaults({ throttleRate: 1, operations: ['GetItem', 'BatchGetItem'] });
      release();
      await holding;
      await new Promise((resolve) => setTimeout(resolve, 600)); // polls fail throttled meanwhile
      expect(waiter.stats().throttles).toBeGreaterThan(0);
      proxy.setFaults({});
      expect(await waiting).toBe('from the holder');
      expect(waiterFetch).not.toHaveBeenCalled();
    } finally {
      await proxy.close();
    }
  });

  it('a waiter whose polls failed until the lease it waited on ran out looks at the value before fetching: the holder stored one', async () => {
    const proxy = await FaultProxy.start(db.endpoint);
    try {
      const tableName = await db.newTable();
      const lease = { ttlMs: 800, waitMs: 10_000 };
      const { cache: holder } = await db.newCache({ tableName, lease });
      const { cache: waiter } = await db.newCache({ tableName, endpoint: proxy.endpoint, timeoutMs: 200, breaker: false, lease });
      await waiter.get('warm-up');
      const turn = await holder.acquire<string>('k', { ttlSeconds: 60 });
      expect(turn.found).toBe(false);
      const waiterFetch = vi.fn(async () => 'from the waiter');
      const waiting = waiter.getOrSet('k', waiterFetch, { ttlSeconds: 60 });
      await vi.waitFor(() => expect(waiter.stats().leaseWaits).toBe(1));
      // The waiter's polls fail from now on, while the holder stores its value and its lease runs out.
      proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] });
      if (!turn.found) expect(await turn.fulfil('from the holder')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(await waiting).toBe('from the holder');
      expect(waiterFetch).not.toHaveBeenCalled();
      expect(waiter.stats().leaseWins).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('the lease of a 40 KB value is a separate item under 1 KB (one write unit); the value item is untouched until the new value', async () => {
    const tableName = await db.newTable();
    const [writer, holder] = await fleet(2, tableName, { memory: false, compression: false });
    const big = { rows: 'r'.repeat(40 * 1024) };
    await writer!.set('big', big, { ttlSeconds: 0.05 });
    await new Promise((resolve) => setTimeout(resolve, 80)); // now stale
    const before = (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'big' } }, ConsistentRead: true }))).Item!;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const refreshing = holder!.getOrSet('big', async () => {
      await gate;
      return { rows: 'new' };
    });
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    const scan = await db.client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }));
    const leaseItem = scan.Items!.find((item) => item.dc_enc?.S === 'lease')!;
    expect(leaseItem.id!.S).toMatch(/^#dc:l:/);
    const bytes = Object.entries(leaseItem).reduce((total, [name, value]) => total + name.length + (value.S ?? value.N ?? '').length, 0);
    expect(bytes).toBeLessThan(1024);
    const during = (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'big' } }, ConsistentRead: true }))).Item!;
    expect(during).toEqual(before);
    release();
    expect(await refreshing).toEqual({ rows: 'new' });
  });

  it('a refresh never overwrites a newer value written meanwhile (its write is conditional on what it replaced)', async () => {
    const tableName = await db.newTable();
    const [slow, fast] = await fleet(2, tableName, { memory: false, lease: false });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const late = slow!.getOrSet('k', async () => {
      await gate;
      return 'older fetch';
    }, { ttlSeconds: 60 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fast!.set('k', 'newer value', { ttlSeconds: 60 });
    release();
    expect(await late).toBe('older fetch'); // its caller still gets what it fetched
    expect(await fast!.get('k')).toBe('newer value');
  });

  it('an item holding only a lease reads as a miss for the original Python service and for get', async () => {
    const tableName = await db.newTable();
    const [holder, reader] = await fleet(2, tableName);
    void holder!.getOrSet('k', () => new Promise<never>(() => {}));
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    expect(await new OriginalCacheService(db.client, tableName).get('k')).toBeUndefined();
    expect(await reader!.get('k')).toBeUndefined();
    expect(reader!.stats().corruptItems).toBe(0);
  });
});

describe('at fleet scale: expiry spread and a failing upstream left alone', () => {
  /** Every cache calls `getOrSet` every 20 ms for `ms`; resolves the times (epoch ms) the fetcher ran. */
  async function invokeFor(caches: DynamoCache[], ms: number, options: GetOrSetOptions): Promise<number[]> {
    const fetchedAt: number[] = [];
    const until = Date.now() + ms;
    await Promise.all(
      caches.map(async (cache) => {
        while (Date.now() < until) {
          await cache.getOrSet('k', async () => {
            fetchedAt.push(Date.now());
            return { at: Date.now() };
          }, options);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    );
    return fetchedAt;
  }

  it('without a stale window, a value about to expire is refreshed ahead of its expiry, once, by the first environment to recheck it', async () => {
    const tableName = await db.newTable();
    const caches = await fleet(5, tableName);
    await caches[0]!.set('k', { at: 0 }, { ttlSeconds: 2 }); // rechecked over its last 200 ms
    const fetched = await invokeFor(caches, 2300, { ttlSeconds: 10 });
    expect(fetched).toHaveLength(1);
    expect(sum(caches, 'earlyRefreshes')).toBe(1); // taken while the value was still fresh
  });

  it('with a stale-while-revalidate window, it is refreshed once past its end, while the fleet answers it stale', async () => {
    const tableName = await db.newTable();
    const caches = await fleet(5, tableName, { staleWhileRevalidateSeconds: 30 });
    await caches[0]!.set('k', { at: 0 }, { ttlSeconds: 1 });
    const fetched = await invokeFor(caches, 1500, { ttlSeconds: 10 });
    expect(fetched).toHaveLength(1);
    expect(sum(caches, 'earlyRefreshes')).toBe(0); // at its end, not ahead of it
    expect(sum(caches, 'leaseWaits')).toBe(0); // the stale value answers meanwhile
  });

  it.each([
    ['with its memory tier', {}],
    ['without one (a cold environment)', { memory: false as const }],
  ])('after a refresh failed, an environment %s answers its stale value within staleIfErrorSeconds without calling the upstream, until the failed lease says', async (_name, options: DynamoCacheOptions) => {
    const tableName = await db.newTable();
    const [first, second] = await fleet(2, tableName, options);
    const lifetime = { ttlSeconds: 60, staleIfErrorSeconds: 300 };
    vi.useFakeTimers({ toFake: ['Date'] });
    await first!.set('k', 'still-good', lifetime);
    await second!.get('k'); // the second environment holds it in memory too, when it has a memory tier
    vi.setSystemTime(Date.now() + 120_000); // stale, inside the stale-if-error window
    const failing = vi.fn(async () => {
      throw new TooManyRequests('upstream 429');
    });
    expect(await first!.getOrSet('k', failing, lifetime)).toBe('still-good');
    expect(await second!.getOrSet('k', failing, lifetime)).toBe('still-good');
    expect(await second!.getOrSet('k', failing, lifetime)).toBe('still-good');
    expect(failing).toHaveBeenCalledTimes(1); // the second environment left the upstream alone
    expect(second!.stats().staleIfError).toBe(2);
    vi.setSystemTime(Date.now() + FAILED_REFRESH_RETRY_MS * 2 + 1);
    expect(await second!.getOrSet('k', async () => 'recovered', lifetime)).toBe('recovered');
  });
});

describe('acquire(): the turn protocol', () => {
  it('fulfil with a value that cannot be stored throws, and the turn can still be abandoned (the lease goes back)', async () => {
    const tableName = await db.newTable();
    const [first, second] = await fleet(2, tableName, { lease: { ttlMs: 60_000, waitMs: 2000 } });
    const turn = await first!.acquire('k');
    expect(turn.found).toBe(false);
    if (turn.found) return;
    await expect(turn.fulfil(new Date() as never)).rejects.toThrow(/Date/);
    await turn.abandon();
    const started = performance.now();
    expect(await second!.getOrSet('k', async () => 'second')).toBe('second');
    expect(performance.now() - started).toBeLessThan(1500); // did not wait out the 60 s lease or the 2 s bound
    expect(second!.stats().leaseWaitTimeouts).toBe(0);
  });

  it('a turn ends once: a second end is refused', async () => {
    const { cache } = await db.newCache();
    const turn = await cache.acquire('k');
    if (turn.found) throw new Error('expected a turn');
    await turn.fulfil('v');
    await expect(turn.abandon()).rejects.toThrow(/only once/);
    expect(await cache.get('k')).toBe('v');
  });
});

describe('stale-while-revalidate', () => {
  it('with a stale value, one of 50 concurrent callers refreshes and the other 49 answer from the stale value at once', async () => {
    const tableName = await db.newTable();
    const caches = await fleet(50, tableName, { staleWhileRevalidateSeconds: 600 });
    vi.useFakeTimers({ toFake: ['Date'] });
    await caches[0]!.set('k', { token: 'old' }, { ttlSeconds: 10 });
    vi.setSystemTime(Date.now() + 20_000); // past the TTL, inside the stale window
    let staleAnswers = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let fetches = 0;
    const fetcher = async () => {
      fetches += 1;
      await gate; // opens only once 49 callers have answered: they must not depend on this fetch
      return { token: 'new' };
    };
    const results = await Promise.all(
      caches.map(async (cache) => {
        const value = await cache.getOrSet('k', fetcher, { ttlSeconds: 10 });
        if (value.token === 'old' && ++staleAnswers === 49) openGate();
        return value.token;
      }),
    );
    expect(fetches).toBe(1);
    expect(results.filter((t) => t === 'old')).toHaveLength(49);
    expect(results.filter((t) => t === 'new')).toHaveLength(1);
    expect(sum(caches, 'staleHits')).toBe(49);
    expect(await caches[7]!.get('k')).toEqual({ token: 'new' });
  });

  it('get() never returns a stale value; the item stays stored for the whole stale window', async () => {
    const { cache, tableName } = await db.newCache({ staleWhileRevalidateSeconds: 300, staleIfErrorSeconds: 600 });
    const before = Date.now();
    await cache.set('k', 'v', { ttlSeconds: 10 });
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'k' } } }));
    expect(Number(raw.Item!.expires_at!.N) * 1000).toBeGreaterThanOrEqual(before + 610_000);
    expect(Number(raw.Item!.dc_fresh!.N)).toBeGreaterThanOrEqual(before + 10_000);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 11_000);
    expect(await cache.get('k')).toBeUndefined();
  });
});

describe('stale-if-error', () => {
  it('a failing upstream is answered with the stale value for the configured window, then the error', async () => {
    const { cache } = await db.newCache({ memory: false });
    vi.useFakeTimers({ toFake: ['Date'] });
    await cache.set('token', 'still-good', { ttlSeconds: 60, staleIfErrorSeconds: 300 });
    const failing = vi.fn(async () => {
      throw new TooManyRequests('upstream answered 429');
    });
    vi.setSystemTime(Date.now() + 120_000); // stale, inside the 300 s window
    expect(await cache.getOrSet('token', failing, { ttlSeconds: 60, staleIfErrorSeconds: 300 })).toBe('still-good');
    vi.setSystemTime(Date.now() + 250_000); // 370 s after the write: 310 s stale, outside the 300 s window
    await expect(cache.getOrSet('token', failing, { ttlSeconds: 60, staleIfErrorSeconds: 300 })).rejects.toBeInstanceOf(TooManyRequests);
    expect(failing).toHaveBeenCalledTimes(2);
    expect(cache.stats().staleIfError).toBe(1);
  });

  it.each([
    ['delete', (cache: DynamoCache) => cache.delete('token')],
    ['invalidate', (cache: DynamoCache) => cache.invalidate('token')],
  ])('a value another environment removed (%s) is no stale fallback here, though this environment still held it in memory', async (_name, remove) => {
    const tableName = await db.newTable();
    const [remover, holder] = await fleet(2, tableName);
    const lifetime = { ttlSeconds: 60, staleIfErrorSeconds: 300 };
    vi.useFakeTimers({ toFake: ['Date'] });
    await remover!.set('token', 'revoked', lifetime);
    expect(await holder!.getOrSet('token', async () => 'unused', lifetime)).toBe('revoked'); // now in the holder's memory
    vi.setSystemTime(Date.now() + 120_000); // stale, inside the stale-if-error window
    expect(await remove(remover!)).toBe(true);
    const failing = vi.fn(async () => {
      throw new TooManyRequests('upstream answered 429');
    });
    await expect(holder!.getOrSet('token', failing, lifetime)).rejects.toBeInstanceOf(TooManyRequests);
    expect(failing).toHaveBeenCalledTimes(1);
    expect(holder!.stats().staleIfError).toBe(0);
  });

  it.each([
    ['in clear', {}],
    ['with encryption (the mark is signed)', { encryption: { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' } }],
  ])("a waiter answers the stale value when the holder's refresh failed: the lease says so (%s)", async (_name, options: DynamoCacheOptions) => {
    const tableName = await db.newTable();
    const [holder, waiter] = await fleet(2, tableName, { memory: false, ...options });
    const lifetime = { ttlSeconds: 60, staleIfErrorSeconds: 300 };
    vi.useFakeTimers({ toFake: ['Date'] });
    await holder!.set('k', 'still-good', lifetime);
    vi.setSystemTime(Date.now() + 120_000); // stale, inside the stale-if-error window
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const failing = holder!.getOrSet('k', async () => {
      await gate;
      throw new TooManyRequests('upstream 429');
    }, lifetime);
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    const waiterFetch = vi.fn(async () => 'fetched by the waiter');
    const waiting = waiter!.getOrSet('k', waiterFetch, lifetime);
    await vi.waitFor(() => expect(waiter!.stats().leaseWaits).toBe(1));
    release();
    expect(await failing).toBe('still-good');
    expect(await waiting).toBe('still-good');
    expect(waiterFetch).not.toHaveBeenCalled();
    expect(waiter!.stats().staleIfError).toBe(1);
    const leases = (await db.client.send(new ScanCommand({ TableName: tableName }))).Items!.filter((item) => item.dc_enc?.S === 'lease');
    expect(leases).toHaveLength(1);
    expect(leases[0]!.dc_failed).toEqual({ BOOL: true });
    expect(Number(leases[0]!.dc_lease!.N)).toBeLessThan(Date.now()); // over: the next caller takes the turn at once
  });

  it('a waiter does not answer stale when the holder gave the lease back without failing (it found nothing to store): it fetches itself', async () => {
    const tableName = await db.newTable();
    const [holder, waiter] = await fleet(2, tableName, { memory: false });
    const lifetime = { ttlSeconds: 60, staleIfErrorSeconds: 300 };
    vi.useFakeTimers({ toFake: ['Date'] });
    await holder!.set('k', 'deleted upstream', lifetime);
    vi.setSystemTime(Date.now() + 120_000);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const notFound = holder!.getOrSet('k', async () => {
      await gate;
      return undefined; // "not found", and no negativeTtlSeconds: nothing stored, the lease deleted
    }, lifetime);
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    const waiting = waiter!.getOrSet('k', async () => 'the waiter\'s own answer', lifetime);
    await vi.waitFor(() => expect(waiter!.stats().leaseWaits).toBe(1));
    release();
    expect(await notFound).toBeUndefined();
    expect(await waiting).toBe("the waiter's own answer");
    expect(waiter!.stats().staleIfError).toBe(0);
  });

  it('the stale-if-error answer is logged as a warning', async () => {
    const { cache, logger } = await db.newCache({ memory: false, staleIfErrorSeconds: 300 });
    vi.useFakeTimers({ toFake: ['Date'] });
    await cache.set('k', 1, { ttlSeconds: 1 });
    vi.setSystemTime(Date.now() + 5_000);
    expect(
      await cache.getOrSet('k', async () => {
        throw new TooManyRequests('429');
      }),
    ).toBe(1);
    expect(logger.warnings.some((w) => /answering with the stale value/.test(w.message) && w.fields.errorName === 'TooManyRequests')).toBe(true);
  });
});

describe('probabilistic early refresh (XFetch)', () => {
  it('refreshes with a probability that grows as expiry nears and with the fetch time', () => {
    const timing = { freshUntilMs: 10_000, expiresAtMs: 10_000, fetchMs: 100 };
    // Refreshes when -ln(1-u) * fetchMs * beta >= time left.
    expect(shouldRefreshEarly(timing, 9_950, 1, () => 0.5)).toBe(true); // 69 ms ahead >= 50 ms left
    expect(shouldRefreshEarly(timing, 9_950, 1, () => 0.3)).toBe(false); // 36 ms ahead < 50 ms left
    expect(shouldRefreshEarly(timing, 5_000, 1, () => 0.99)).toBe(false); // 460 ms ahead < 5 s left
    expect(shouldRefreshEarly(timing, 5_000, 20, () => 0.99)).toBe(true); // beta 20: 9.2 s ahead
    expect(shouldRefreshEarly({ ...timing, fetchMs: undefined }, 9_999, 1, () => 0.99)).toBe(false);
  });

  it('a hot key near expiry is refreshed early by one environment, never by all', async () => {
    const tableName = await db.newTable();
    const caches = await fleet(20, tableName, { memory: false });
    vi.useFakeTimers({ toFake: ['Date'] });
    const api = upstream(0);
    // The first fetch "takes" 200 ms on the fake clock: XFetch scales the early window by the fetch time.
    const options = { ttlSeconds: 30, earlyRefresh: { beta: 1e6 } };
    await caches[0]!.getOrSet('hot', async () => {
      vi.setSystemTime(Date.now() + 200);
      return api.fetch();
    }, options);
    vi.setSystemTime(Date.now() + 29_000);
    const results = await Promise.all(caches.map((cache) => cache.getOrSet('hot', api.fetch, options)));
    expect(api.calls).toBe(2);
    expect(sum(caches, 'earlyRefreshes')).toBe(1);
    expect(results.every((r) => r.token === 'token-1' || r.token === 'token-2')).toBe(true);
  });
});

describe('negative caching', () => {
  it('caches a fetcher’s "not found" for negativeTtlSeconds, then asks again', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    vi.useFakeTimers({ toFake: ['Date'] });
    const lookup = vi.fn(async (): Promise<string | undefined> => undefined);
    expect(await cache.getOrSet('user:404', lookup, { negativeTtlSeconds: 30 })).toBeUndefined();
    expect(await cache.getOrSet('user:404', lookup, { negativeTtlSeconds: 30 })).toBeUndefined();
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(cache.stats().negativeHits).toBe(1);
    expect(await cache.get('user:404')).toBeUndefined();
    expect(await new OriginalCacheService(db.client, tableName).get('user:404')).toBeUndefined();
    vi.setSystemTime(Date.now() + 31_000);
    lookup.mockResolvedValueOnce('found now');
    expect(await cache.getOrSet('user:404', lookup, { negativeTtlSeconds: 30 })).toBe('found now');
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('getMany leaves cached "not found" keys out', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.getOrSet('missing', async () => undefined, { negativeTtlSeconds: 60 });
    await cache.set('present', 1);
    expect(await cache.getMany(['missing', 'present'])).toEqual(new Map([['present', 1]]));
  });
});
