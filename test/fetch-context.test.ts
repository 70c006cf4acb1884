import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import type { FetchContext } from '../src/refresh/fetch-context.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

/** A token as an OAuth server answers it: it carries its own lifetime. */
interface Token {
  readonly access_token: string;
  readonly expires_in: number;
}

/** `n` execution environments on one table. */
async function fleet(n: number, options: DynamoCacheOptions = {}): Promise<DynamoCache[]> {
  const tableName = await db.newTable();
  return Promise.all(Array.from({ length: n }, async () => (await db.newCache({ tableName, ...options })).cache));
}

/** Moves the clock `ms` on (Date only: timers and the SDK run as usual). */
function later(ms: number): void {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + ms });
}

describe('ttlSeconds from the value', () => {
  it('a token with expires_in: 2 expires after 2 s, not after the default TTL', async () => {
    const [cache, other] = await fleet(2, { defaultTtlSeconds: 3300 });
    let issued = 0;
    const fetchToken = async (): Promise<Token> => ({ access_token: `token-${++issued}`, expires_in: 2 });
    const options = { ttlSeconds: (token: Token) => token.expires_in };
    expect(await cache!.getOrSet('token', fetchToken, options)).toEqual({ access_token: 'token-1', expires_in: 2 });
    const stored = await cache!.inspect('token');
    expect(stored!.freshUntil!.getTime() - Date.now()).toBeLessThanOrEqual(2000);
    expect(stored!.freshUntil!.getTime() - Date.now()).toBeGreaterThan(1000);
    later(1900);
    expect(await other!.getOrSet('token', fetchToken, options)).toMatchObject({ access_token: 'token-1' });
    later(200); // 2.1 s after it was issued
    expect(await cache!.get('token')).toBeUndefined();
    expect(await other!.getOrSet('token', fetchToken, options)).toMatchObject({ access_token: 'token-2' });
    expect(issued).toBe(2);
  });

  it('is called with the value and the key; setTtl in the fetcher overrides it', async () => {
    const [cache] = await fleet(1, { memory: false });
    const seen: unknown[][] = [];
    const ttlSeconds = (value: { n: number }, key: string) => {
      seen.push([value, key]);
      return 60;
    };
    await cache!.getOrSet('by-function', async () => ({ n: 1 }), { ttlSeconds });
    await cache!.getOrSet(
      'by-setTtl',
      async (context) => {
        context.setTtl(5, { staleIfErrorSeconds: 30 });
        return { n: 2 };
      },
      { ttlSeconds },
    );
    expect(seen).toEqual([[{ n: 1 }, 'by-function']]);
    const byFunction = await cache!.inspect('by-function');
    const bySetTtl = await cache!.inspect('by-setTtl');
    expect(byFunction!.freshUntil!.getTime() - Date.now()).toBeGreaterThan(55_000);
    expect(bySetTtl!.freshUntil!.getTime() - Date.now()).toBeLessThanOrEqual(5000);
    // The item lives through its stale-if-error window: 5 + 30 s.
    expect(bySetTtl!.expiresAt!.getTime() - Date.now()).toBeGreaterThan(30_000);
    expect(bySetTtl!.expiresAt!.getTime() - Date.now()).toBeLessThanOrEqual(36_000);
  });

  it('wrap, acquire().fulfil and set take it too', async () => {
    const [cache] = await fleet(1, { memory: false, defaultTtlSeconds: 3300 });
    const lifetime = (key: string) => (cache!.inspect(key).then((info) => (info!.freshUntil!.getTime() - Date.now()) / 1000));
    const load = cache!.wrap(async (id: string) => ({ id, ttl: 7 }), { key: (id) => `wrapped:${id}`, ttlSeconds: (value) => value.ttl });
    await load('a');
    expect(await lifetime('wrapped:a')).toBeLessThanOrEqual(7);
    const turn = await cache!.acquire<{ ttl: number }>('acquired', { ttlSeconds: (value) => value.ttl });
    expect(turn.found).toBe(false);
    if (!turn.found) expect(await turn.fulfil({ ttl: 8 })).toBe(true);
    expect(await lifetime('acquired')).toBeLessThanOrEqual(8);
    const overridden = await cache!.acquire<{ ttl: number }>('overridden', { ttlSeconds: 100 });
    if (!overridden.found) await overridden.fulfil({ ttl: 9 }, { ttlSeconds: (value) => value.ttl });
    expect(await lifetime('overridden')).toBeLessThanOrEqual(9);
    await cache!.set('set', { ttl: 4 }, { ttlSeconds: (value) => value.ttl });
    expect(await lifetime('set')).toBeLessThanOrEqual(4);
  });

  it('a function that throws or returns no finite number: the value is answered, not stored, and the failure logged and counted', async () => {
    const { cache, logger } = await db.newCache({ memory: false });
    const results = [Number.NaN, Infinity, '60', undefined];
    for (const [index, result] of results.entries()) {
      expect(await cache.getOrSet(`bad-${index}`, async () => ({ index }), { ttlSeconds: () => result as number })).toEqual({ index });
      expect((await cache.inspect(`bad-${index}`))!.state).toBe('absent');
    }
    expect(
      await cache.getOrSet('throws', async () => 'token', {
        ttlSeconds: () => {
          throw new Error('no expires_in');
        },
      }),
    ).toBe('token');
    expect((await cache.inspect('throws'))!.state).toBe('absent');
    expect(cache.stats().errors).toBe(5);
    const warnings = logger.warnings.filter((w) => /answered but not cached/.test(w.message));
    expect(warnings).toHaveLength(5);
    expect(warnings[0]!.fields.errorMessage).toMatch(/finite number of seconds, got null/);
    expect(warnings[4]!.fields.errorMessage).toMatch(/threw: no expires_in/);
    // The lease went back with it: the next caller fetches at once, without waiting for it to expire.
    expect(await cache.getOrSet('bad-0', async () => 'again', { ttlSeconds: 60 })).toBe('again');
    expect(cache.stats().leaseWaits).toBe(0);
  });

  it('where nothing was fetched (set), a bad result is an InvalidOptionsError, and nothing is stored', async () => {
    const { cache } = await db.newCache({ memory: false });
    await expect(cache.set('k', 'v', { ttlSeconds: () => Number.NaN })).rejects.toThrow(InvalidOptionsError);
    await expect(cache.set('k', 'v', { ttlSeconds: '60' as unknown as number })).rejects.toThrow(/ttlSeconds must be a finite number/);
    await expect(cache.getOrSet('k', async () => 'v', { ttlSeconds: {} as unknown as number })).rejects.toThrow(InvalidOptionsError);
    expect(() => cache.wrap(async function load() {}, { ttlSeconds: Number.NaN })).toThrow(InvalidOptionsError);
    expect((await cache.inspect('k'))!.state).toBe('absent');
  });
});

describe('the previous value', () => {
  it('is handed to the refresh after expiry: decoded for the fetcher, with when it stopped being fresh', async () => {
    const [writer, refresher] = await fleet(2, { staleIfErrorSeconds: 60 });
    const first = { etag: '"v1"', items: [1, 2] };
    await writer!.getOrSet('feed', async () => first, { ttlSeconds: 1 });
    const seen: Array<FetchContext<typeof first>['previous']> = [];
    const refresh = async (context: FetchContext<typeof first>) => {
      seen.push(context.previous);
      const previous = context.previous?.value;
      previous?.items.push(3); // the fetcher's own copy
      return { etag: '"v2"', items: previous?.items ?? [] };
    };
    expect(await refresher!.getOrSet('feed', refresh, { ttlSeconds: 1 })).toEqual(first); // fresh: no fetch
    expect(seen).toEqual([]);
    later(1100);
    expect(await refresher!.getOrSet('feed', refresh, { ttlSeconds: 1 })).toEqual({ etag: '"v2"', items: [1, 2, 3] });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ value: { etag: '"v1"', items: [1, 2, 3] } });
    expect(seen[0]!.freshUntil.getTime()).toBeLessThanOrEqual(Date.now() - 100);
    expect(seen[0]!.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });

  it('is undefined on a first miss, for a cached "not found", and past the item\'s expiry (its stale windows)', async () => {
    const [cache] = await fleet(1, { memory: false });
    const previous: unknown[] = [];
    const record = (value: unknown) => async (context: FetchContext) => {
      previous.push(context.previous);
      return value;
    };
    await cache!.getOrSet('k', record('v1'), { ttlSeconds: 1 }); // first miss
    later(2100); // past its expiry (no stale window, rounded up to the second): the item may still be in the table, it is not handed over
    await cache!.getOrSet('k', record(undefined), { ttlSeconds: 1, negativeTtlSeconds: 1, staleIfErrorSeconds: 10 });
    later(3000); // the "not found" is stale
    await cache!.getOrSet('k', record('v3'), { ttlSeconds: 1 });
    expect(previous).toEqual([undefined, undefined, undefined]);
  });

  it('an acquire turn carries it too', async () => {
    const [cache] = await fleet(1, { staleWhileRevalidateSeconds: 30 });
    await cache!.set('k', { v: 1 }, { ttlSeconds: 1 });
    later(1200);
    const turn = await cache!.acquire<{ v: number }>('k');
    expect(turn.found).toBe(false);
    if (turn.found) return;
    expect(turn.previous?.value).toEqual({ v: 1 });
    await turn.abandon();
  });
});

describe('noStore()', () => {
  it('answers without storing: nothing is written, and what the cache held stays as it was', async () => {
    const [cache] = await fleet(1, { memory: false, staleIfErrorSeconds: 60 });
    const partial = async (context: FetchContext) => {
      context.noStore();
      return { partial: true };
    };
    expect(await cache!.getOrSet('fresh-key', partial)).toEqual({ partial: true });
    expect((await cache!.inspect('fresh-key'))!.state).toBe('absent');
    await cache!.set('stale-key', { complete: true }, { ttlSeconds: 1 });
    later(1200);
    expect(await cache!.getOrSet('stale-key', partial)).toEqual({ partial: true });
    expect(await cache!.inspect('stale-key')).toMatchObject({ state: 'stale', value: { complete: true } });
    expect(cache!.stats().writes).toBe(1);
  });

  it('gives the lease back at once: another environment waiting for the fetch takes its own turn', async () => {
    const [holder, waiter] = await fleet(2, { lease: { ttlMs: 30_000, waitMs: 10_000 } });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = holder!.getOrSet('k', async (context) => {
      await gate;
      context.noStore();
      return 'degraded';
    });
    await vi.waitFor(() => expect(holder!.stats().leaseWins).toBe(1));
    const waited = waiter!.getOrSet('k', async () => 'complete');
    await vi.waitFor(() => expect(waiter!.stats().leaseWaits).toBe(1));
    release();
    expect(await held).toBe('degraded');
    expect(await waited).toBe('complete');
    expect(waiter!.stats()).toMatchObject({ leaseWaitTimeouts: 0, leaseWins: 1 });
  });

  it('callers in this process share the one fetch and its answer, stored or not', async () => {
    const [cache] = await fleet(1);
    const contexts: FetchContext[] = [];
    const fetcher = async (context: FetchContext) => {
      contexts.push(context);
      await new Promise((resolve) => setTimeout(resolve, 50));
      context.noStore();
      return 'shared';
    };
    const answers = await Promise.all(Array.from({ length: 5 }, () => cache!.getOrSet('k', fetcher)));
    expect(answers).toEqual(Array(5).fill('shared'));
    expect(contexts).toHaveLength(1);
    expect(cache!.stats()).toMatchObject({ fetches: 1, coalesced: 4, writes: 0 });
  });
});

describe('addTags()', () => {
  it("tags the answer beside the call's tags: invalidating either ends it in every environment", async () => {
    const [cache, other] = await fleet(2);
    let fetches = 0;
    const loadOrder = (context: FetchContext) => {
      context.addTags(['customer:7']); // learnt while fetching: the order's customer
      return { order: 1, fetch: ++fetches };
    };
    const options = { ttlSeconds: 300, tags: ['order:1'] };
    expect(await cache!.getOrSet('order:1', loadOrder, options)).toEqual({ order: 1, fetch: 1 });
    expect(await other!.getOrSet('order:1', loadOrder, options)).toEqual({ order: 1, fetch: 1 });
    await other!.invalidateTags(['customer:7']);
    expect(await other!.getOrSet('order:1', loadOrder, options)).toEqual({ order: 1, fetch: 2 });
    await cache!.invalidateTags(['order:1']);
    expect(await cache!.getOrSet('order:1', loadOrder, options)).toEqual({ order: 1, fetch: 3 });
  });

  it('an invalidation of an added tag that lands while the fetcher runs: the answer is not stored (it may predate the change)', async () => {
    const [cache, other] = await fleet(2, { memory: false });
    await other!.set('customer', { id: 7 }, { tags: ['customer:7'] }); // the tag's state exists
    vi.useFakeTimers({ toFake: ['Date'] });
    const loadOrder = async (context: FetchContext) => {
      context.addTags(['customer:7']);
      vi.setSystemTime(Date.now() + 10);
      await other!.invalidateTags(['customer:7']); // the customer changes while the order is fetched
      return { order: 1 };
    };
    expect(await cache!.getOrSet('order:1', loadOrder, { ttlSeconds: 300, tags: ['order:1'] })).toEqual({ order: 1 });
    expect(await other!.inspect('order:1')).toMatchObject({ state: 'absent' });
    // An answer whose added tag was not invalidated meanwhile is stored.
    vi.setSystemTime(Date.now() + 10);
    expect(await cache!.getOrSet('order:2', (context) => (context.addTags(['customer:7']), { order: 2 }), { ttlSeconds: 300 })).toEqual({ order: 2 });
    expect(await other!.get('order:2')).toEqual({ order: 2 });
  });

  it('refuses a bad tag, and more than 64 in all', async () => {
    const [cache] = await fleet(1);
    await expect(cache!.getOrSet('k', (context) => context.addTags([''] as string[]))).rejects.toThrow(InvalidOptionsError);
    const many = Array.from({ length: 40 }, (_, i) => `t${i}`);
    await expect(
      cache!.getOrSet('k2', (context) => {
        context.addTags(many.slice(0, 30));
        context.addTags(many.slice(10, 40)); // 40 distinct
        context.addTags(Array.from({ length: 30 }, (_, i) => `u${i}`)); // 70 distinct
        return 1;
      }),
    ).rejects.toThrow(/at most 64 tags/);
  });
});

describe('a bad argument to the context', () => {
  it("is the caller's error, not an upstream failure: it rejects with a stale value at hand, and the lease goes back unmarked", async () => {
    const [cache, other] = await fleet(2, { staleIfErrorSeconds: 300 });
    await cache!.set('profile:1', { v: 1 }, { ttlSeconds: 1 });
    later(1100);
    const buggy = (context: FetchContext) => {
      context.addTags(['user:1', '']); // a bug in the caller's code
      return { v: 2 };
    };
    await expect(cache!.getOrSet('profile:1', buggy)).rejects.toThrow(InvalidOptionsError);
    expect(cache!.stats().staleIfError).toBe(0);
    // A lease marked failed would have another environment answer the stale value for a second; it fetches.
    expect(await other!.getOrSet('profile:1', async () => ({ v: 3 }))).toEqual({ v: 3 });
  });
});

describe('the fetch signal', () => {
  it("aborts with the caller's signal, and at the call's deadline itself (the margin is the fetch's time)", async () => {
    const [cache] = await fleet(1, { deadlineMarginMs: 200 });
    const controller = new AbortController();
    const byCaller = cache!.getOrSet(
      'by-caller',
      (context) =>
        new Promise((_, reject) => {
          context.signal.addEventListener('abort', () => reject(context.signal.reason));
          controller.abort(new Error('caller gave up'));
        }),
      { signal: controller.signal },
    );
    await expect(byCaller).rejects.toThrow('caller gave up');
    let aborted: unknown;
    const deadline = Date.now() + 1000;
    await expect(
      cache!.getOrSet(
        'by-deadline',
        (context) =>
          new Promise((_, reject) =>
            context.signal.addEventListener('abort', () => {
              aborted = { at: Date.now(), reason: context.signal.reason };
              reject(context.signal.reason);
            }),
          ),
        { deadline },
      ),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
    // Past the point where the cache's own work stops (deadline - 200 ms): the fetch had that time.
    expect((aborted as { at: number }).at).toBeGreaterThanOrEqual(deadline - 50);
  });

  it('never aborts for a call with neither signal nor deadline', async () => {
    const [cache] = await fleet(1);
    let signal: AbortSignal | undefined;
    await cache!.getOrSet('k', async (context) => {
      signal = context.signal;
      return 'v';
    });
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal!.aborted).toBe(false);
  });
});

describe('checks', () => {
  it('setTtl refuses a bad number or window, and an unknown window name with the one meant', async () => {
    const [cache] = await fleet(1);
    const attempt = (shape: (context: FetchContext) => void) =>
      cache!.getOrSet(`k-${Math.random()}`, async (context) => {
        shape(context);
        return 'v';
      });
    await expect(attempt((c) => c.setTtl(Number.NaN))).rejects.toThrow(/setTtl\(\) seconds must be a finite number/);
    await expect(attempt((c) => c.setTtl(60, { staleIfErrorSeconds: -1 }))).rejects.toThrow(/zero or more/);
    await expect(attempt((c) => c.setTtl(60, { staleIfError: 5 } as never))).rejects.toThrow(/did you mean "staleIfErrorSeconds"/);
  });

  it('a disabled cache calls the fetcher with a context too', async () => {
    const { cache } = await db.newCache({ disabled: true });
    const answer = await cache.getOrSet('k', async (context) => {
      context.setTtl(5);
      context.noStore();
      return { previous: context.previous ?? null, aborted: context.signal.aborted };
    });
    expect(answer).toEqual({ previous: null, aborted: false });
  });
});
