// Invalidation by tag (issue 21): values carry tags; invalidateTags makes every value of a tag unfresh, in every
// environment sharing the table and namespace, within memory.ttlSeconds; tag state only moves forward, and with
// encryption it is authenticated.
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

afterEach(() => {
  vi.useRealTimers();
});

const encryption = { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' };

/** `n` simulated execution environments: separate caches, memory tiers and SDK clients on one table (through `endpoint`, when given). */
async function fleet(n: number, tableName: string, options: DynamoCacheOptions & { endpoint?: string } = {}): Promise<DynamoCache[]> {
  return Promise.all(Array.from({ length: n }, async () => (await db.newCache({ tableName, ...options })).cache));
}

async function tagItem(tableName: string, key: string): Promise<Record<string, AttributeValue> | undefined> {
  return (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: key } }, ConsistentRead: true }))).Item;
}

async function putItem(tableName: string, item: Record<string, AttributeValue>): Promise<void> {
  await db.client.send(new PutItemCommand({ TableName: tableName, Item: item }));
}

async function deleteItem(tableName: string, key: string): Promise<void> {
  await db.client.send(new DeleteItemCommand({ TableName: tableName, Key: { id: { S: key } } }));
}

describe('tags on values', () => {
  it('invalidateTags: every value of the tag misses at once here, values of other tags stay', async () => {
    const { cache } = await db.newCache();
    await cache.set('profile:42', { name: 'Ada' }, { tags: ['user:42'] });
    await cache.set('orders:42', [1, 2], { tags: ['user:42', 'orders'] });
    await cache.set('profile:7', { name: 'Grace' }, { tags: ['user:7'] });
    expect(await cache.get('profile:42')).toEqual({ name: 'Ada' });
    expect(await cache.invalidateTags(['user:42'])).toBe(true);
    expect(await cache.get('profile:42')).toBeUndefined();
    expect(await cache.get('orders:42')).toBeUndefined();
    expect(await cache.get('profile:7')).toEqual({ name: 'Grace' });
    expect(await cache.getMany(['profile:42', 'orders:42', 'profile:7'])).toEqual(new Map([['profile:7', { name: 'Grace' }]]));
  });

  it('getOrSet fetches again after an invalidation, and a value written after it is unaffected', async () => {
    const tableName = await db.newTable();
    const [writer, reader] = await fleet(2, tableName, { memory: false });
    let version = 0;
    const load = async () => ({ version: ++version });
    expect(await reader!.getOrSet('user:42', load, { tags: ['user:42'] })).toEqual({ version: 1 });
    expect(await reader!.getOrSet('user:42', load, { tags: ['user:42'] })).toEqual({ version: 1 });
    await writer!.invalidateTags(['user:42']);
    // The reader has no memory tier but knows the tag's state for memory.ttlSeconds: the default 30 s. A new
    // environment reads it at once.
    const [late] = await fleet(1, tableName, { memory: false });
    expect(await late!.getOrSet('user:42', load, { tags: ['user:42'] })).toEqual({ version: 2 });
    expect(await late!.getOrSet('user:42', load, { tags: ['user:42'] })).toEqual({ version: 2 });
    expect(await writer!.getOrSet('user:42', load, { tags: ['user:42'] })).toEqual({ version: 2 });
    expect(version).toBe(2);
  });

  it('a cached "not found" carries its tags too', async () => {
    const { cache } = await db.newCache();
    let calls = 0;
    const load = async () => (++calls === 1 ? undefined : { id: 9 });
    expect(await cache.getOrSet('user:9', load, { tags: ['user:9'], negativeTtlSeconds: 300 })).toBeUndefined();
    expect(await cache.getOrSet('user:9', load, { tags: ['user:9'], negativeTtlSeconds: 300 })).toBeUndefined();
    await cache.invalidateTags(['user:9']);
    expect(await cache.getOrSet('user:9', load, { tags: ['user:9'], negativeTtlSeconds: 300 })).toEqual({ id: 9 });
    expect(calls).toBe(2);
  });

  it('wrap takes tags as a function of the arguments; acquire().fulfil takes them too', async () => {
    const { cache } = await db.newCache();
    let calls = 0;
    const loadUser = cache.wrap(async (id: string) => ({ id, call: ++calls }), { key: (id) => `user:${id}`, tags: (id) => [`user:${id}`] });
    await loadUser('1');
    await loadUser('2');
    const turn = await cache.acquire('team:1', { tags: ['team:1'] });
    expect(turn.found).toBe(false);
    if (!turn.found) expect(await turn.fulfil({ members: ['1'] }, { tags: ['team:1', 'user:1'] })).toBe(true);
    await cache.invalidateTags(['user:1']);
    expect(await loadUser('1')).toEqual({ id: '1', call: 3 });
    expect(await loadUser('2')).toEqual({ id: '2', call: 2 });
    expect(await cache.get('team:1')).toBeUndefined();
  });

  it('an invalidation that lands while the value is being fetched leaves that value unfresh (it may predate the change)', async () => {
    const tableName = await db.newTable();
    const [reader, writer] = await fleet(2, tableName, { memory: false });
    await reader!.set('warm', 1, { tags: ['user:42'] }); // the tag's item exists and is known to the reader
    let calls = 0;
    const value = await reader!.getOrSet(
      'user:42',
      async () => {
        calls += 1;
        if (calls === 1) await writer!.invalidateTags(['user:42']); // the change commits while this fetch runs
        return { calls };
      },
      { tags: ['user:42'] },
    );
    expect(value).toEqual({ calls: 1 });
    const [other] = await fleet(1, tableName, { memory: false });
    expect(await other!.get('user:42')).toBeUndefined();
    expect(await other!.getOrSet('user:42', async () => ({ calls: ++calls }), { tags: ['user:42'] })).toEqual({ calls: 2 });
  });

  it("the fetch race also when the tag's state could not be read as the fetch started: a state newer than the fetch is not stamped", async () => {
    const tableName = await db.newTable();
    const [writer] = await fleet(1, tableName, { memory: false });
    await writer!.set('warm', 1, { tags: ['user:42'] }); // the tag's state exists
    const [reader] = await fleet(1, tableName, { endpoint: proxy.endpoint, memory: false, timeoutMs: 300, breaker: false });
    // Tag states are read with BatchGetItem; the value and its lease with GetItem and PutItem: only the former is throttled.
    proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] });
    const value = await reader!.getOrSet(
      'profile:42',
      async () => {
        await sleep(1100); // the upstream is slow; the reads of the tag's state at the start have failed, and their second's pause is over
        proxy.setFaults({});
        expect(await writer!.invalidateTags(['user:42'])).toBe(true); // the change commits while this fetch runs
        return { name: 'Ada (before the change)' };
      },
      { tags: ['user:42'], ttlSeconds: 300 },
    );
    expect(value).toEqual({ name: 'Ada (before the change)' });
    const [other] = await fleet(1, tableName, { memory: false });
    expect(await other!.get('profile:42')).toBeUndefined();
    expect(await other!.inspect('profile:42')).toMatchObject({ state: 'absent' });
  });

  it('the fetch race when the state read as the fetch starts is answered after the invalidation: that state is not stamped', async () => {
    const tableName = await db.newTable();
    const [writer] = await fleet(1, tableName, { memory: false });
    await writer!.set('warm', 1, { tags: ['user:42'] });
    const [reader] = await fleet(1, tableName, { endpoint: proxy.endpoint, memory: false });
    // The fetch does not wait for the tag's state; this read reaches DynamoDB after the change below.
    proxy.setFaults({ latencyMs: 500, operations: ['BatchGetItem'] });
    const value = await reader!.getOrSet(
      'profile:42',
      async () => {
        expect(await writer!.invalidateTags(['user:42'])).toBe(true);
        return { name: 'Ada (before the change)' };
      },
      { tags: ['user:42'], ttlSeconds: 300 },
    );
    expect(value).toEqual({ name: 'Ada (before the change)' });
    const [other] = await fleet(1, tableName, { memory: false });
    expect(await other!.get('profile:42')).toBeUndefined();
  });

  it('a new tag gets its item only with a value stored under it: a fetch that stores nothing writes nothing', async () => {
    const { cache, tableName } = await db.newCache();
    await expect(cache.getOrSet('k', async () => Promise.reject(new Error('upstream down')), { tags: ['new-tag'] })).rejects.toThrow('upstream down');
    expect(await cache.getOrSet('absent', async () => undefined, { tags: ['new-tag'] })).toBeUndefined();
    const items = (await db.client.send(new ScanCommand({ TableName: tableName }))).Items ?? [];
    expect(items.filter((item) => item.id!.S!.includes('#dc:t:'))).toEqual([]);
    // Two values under the new tag fetched at once here: both stored, under the state the first created.
    const [a, b] = await Promise.all([cache.getOrSet('a', async () => 1, { tags: ['fresh-tag'] }), cache.getOrSet('b', async () => 2, { tags: ['fresh-tag'] })]);
    expect([a, b]).toEqual([1, 2]);
    const [reader] = await fleet(1, tableName);
    expect([await reader!.get('a'), await reader!.get('b')]).toEqual([1, 2]);
  });

  it('a new tag invalidated while a value under it is fetched: that value is not stored (it may predate the change)', async () => {
    const tableName = await db.newTable();
    const [reader, writer] = await fleet(2, tableName, { memory: false });
    const value = await reader!.getOrSet(
      'doc',
      async () => {
        await writer!.invalidateTags(['brand-new']); // its first state is an invalidation, written during the fetch
        return { stale: true };
      },
      { tags: ['brand-new'] },
    );
    expect(value).toEqual({ stale: true });
    const [other] = await fleet(1, tableName, { memory: false });
    expect(await other!.get('doc')).toBeUndefined();
  });

  it('20 environments holding a tagged value in memory: none answers it fresh once memory.ttlSeconds has passed', async () => {
    const tableName = await db.newTable();
    const envs = await fleet(20, tableName, { memory: { ttlSeconds: 5 } });
    const writer = (await fleet(1, tableName))[0]!;
    await writer.set('catalog', { version: 1 }, { ttlSeconds: 600, tags: ['catalog'] });
    vi.useFakeTimers({ toFake: ['Date'] });
    for (const env of envs) expect(await env.get('catalog')).toEqual({ version: 1 });
    expect(envs.reduce((n, env) => n + env.stats().memoryHits, 0)).toBe(0);
    for (const env of envs) expect(await env.get('catalog')).toEqual({ version: 1 });
    expect(envs.reduce((n, env) => n + env.stats().memoryHits, 0)).toBe(20);
    expect(await writer.invalidateTags(['catalog'])).toBe(true);
    expect(await writer.get('catalog')).toBeUndefined(); // the invalidating environment at once
    vi.setSystemTime(Date.now() + 5_001);
    const answers = await Promise.all(envs.map((env) => env.get('catalog')));
    expect(answers).toEqual(Array.from({ length: 20 }, () => undefined));
    const fetched = await Promise.all(envs.map((env) => env.getOrSet('catalog', async () => ({ version: 2 }), { ttlSeconds: 600, tags: ['catalog'] })));
    expect(fetched.every((value) => value.version === 2)).toBe(true);
  });

  it('tags of another namespace are other tags', async () => {
    const tableName = await db.newTable();
    const { cache: orders } = await db.newCache({ tableName, namespace: 'orders' });
    const { cache: users } = await db.newCache({ tableName, namespace: 'users' });
    await orders.set('x', 1, { tags: ['shared'] });
    await users.set('x', 2, { tags: ['shared'] });
    await users.invalidateTags(['shared']);
    expect(await orders.get('x')).toBe(1);
    expect(await users.get('x')).toBeUndefined();
  });

  it('with hashKeys no tag appears in the table in clear', async () => {
    const { cache, tableName } = await db.newCache({ hashKeys: { secret: 'a-long-hmac-secret-for-tests' } });
    await cache.set('k', 'v', { tags: ['user:42@example.com'] });
    const items = (await db.client.send(new ScanCommand({ TableName: tableName }))).Items ?? [];
    expect(JSON.stringify(items)).not.toContain('example.com');
    await cache.invalidateTags(['user:42@example.com']);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('a hit on a tagged value costs no request more once the tag states are known: one GetItem', async () => {
    const tableName = await db.newTable();
    const { cache: writer } = await db.newCache({ tableName });
    await writer.set('a', 1, { tags: ['t1', 't2', 't3'] });
    await writer.set('b', 2, { tags: ['t1', 't2', 't3'] });
    const requests: string[] = [];
    const client = new DynamoDBClient(localClientConfig(db.endpoint));
    client.middlewareStack.add((next, context) => async (args) => {
      requests.push(String(context.commandName));
      return next(args);
    });
    const { cache: reader } = await db.newCache({ tableName, memory: false, client });
    expect(await reader.get('a')).toBe(1);
    // The namespace generation, the value, then the three states in one request.
    expect(requests).toEqual(['GetItemCommand', 'GetItemCommand', 'BatchGetItemCommand']);
    requests.length = 0;
    expect(await reader.get('b')).toBe(2);
    expect(await reader.get('a')).toBe(1);
    expect(requests).toEqual(['GetItemCommand', 'GetItemCommand']);
    client.destroy();
  });
});

describe("tag-state reads shared by concurrent callers, and each caller's deadline", () => {
  /** A cache through the proxy whose tag-state reads (BatchGetItem) take `latencyMs`, with the namespace generation already read. */
  async function slowTagReads(latencyMs: number, options: DynamoCacheOptions = {}): Promise<DynamoCache> {
    const tableName = await db.newTable();
    const { cache: writer } = await db.newCache({ tableName });
    await writer.set('profile:42', { name: 'Ada' }, { ttlSeconds: 300, tags: ['user:42'] });
    const { cache } = await db.newCache({ tableName, endpoint: proxy.endpoint, breaker: false, ...options });
    expect(await cache.get('warm-up')).toBeUndefined();
    proxy.setFaults({ latencyMs, operations: ['BatchGetItem'] });
    return cache;
  }

  it("a call that joins another caller's read still ends at its own signal and deadline", async () => {
    const cache = await slowTagReads(3000);
    // Another request in this process, with no deadline, starts reading the tag's state.
    const other = cache.getOrSet('orders:42', async () => [1], { tags: ['user:42'] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('client went away')), 300);
    const started = performance.now();
    await expect(cache.get('profile:42', { deadline: Date.now() + 1500, signal: controller.signal })).rejects.toThrow('client went away');
    // Aborted at 300 ms (its deadline less the margin: 1000 ms), while the read it joined takes 3000 ms and goes on.
    expect(performance.now() - started).toBeLessThan(2500);
    expect(await other).toEqual([1]);
  });

  it('a read cut short by the deadline of the caller that started it is made again for a caller that joined it', async () => {
    const cache = await slowTagReads(800, { deadlineMarginMs: 0 });
    const hurried = cache.get('profile:42', { deadline: Date.now() + 300 }); // starts the read, and gives up on it
    await new Promise((resolve) => setTimeout(resolve, 50));
    const patient = cache.get('profile:42'); // joins it
    expect(await hurried).toBeUndefined();
    expect(await patient).toEqual({ name: 'Ada' });
  });
});

describe('tags on many values at once', () => {
  it('setMany and getOrSetMany tag every key: an invalidation ends them all, in another environment too', async () => {
    const tableName = await db.newTable();
    const [writer, reader] = await fleet(2, tableName);
    expect(await writer!.setMany({ a: 1, b: 2 }, { ttlSeconds: 300, tags: ['batch:1'] })).toBe(true);
    let fetched: string[] = [];
    const fetchMany = (keys: string[]) => {
      fetched = [...fetched, ...keys];
      return new Map(keys.map((key) => [key, `${key}-v${fetched.length}`]));
    };
    const many = await reader!.getOrSetMany(['a', 'b', 'c'], fetchMany, { ttlSeconds: 300, tags: ['batch:1'] });
    expect([...many]).toEqual([['a', 1], ['b', 2], ['c', 'c-v1']]);
    expect(await writer!.invalidateTags(['batch:1'])).toBe(true);
    expect(await writer!.get('a')).toBeUndefined();
    // The reader's own tag state is known for memory.ttlSeconds: a fresh environment sees the invalidation at once.
    const [cold] = await fleet(1, tableName);
    fetched = [];
    const again = await cold!.getOrSetMany(['a', 'b', 'c'], fetchMany, { ttlSeconds: 300, tags: ['batch:1'] });
    expect(fetched).toEqual(['a', 'b', 'c']);
    expect(again.get('c')).toBe('c-v3');
  });
});

describe("tag states DynamoDB cannot give (a hot tag's item throttled)", () => {
  const options = { ttlSeconds: 300, staleWhileRevalidateSeconds: 300, staleIfErrorSeconds: 300, tags: ['orders'] };

  it('do not send every environment to the upstream: those holding the value answer it', async () => {
    const tableName = await db.newTable();
    const envs = await fleet(5, tableName, { endpoint: proxy.endpoint, memory: { ttlSeconds: 1 }, timeoutMs: 300 });
    let upstream = 0;
    const load = async () => ({ orders: [1, 2, 3], load: ++upstream });
    for (const env of envs) expect(await env.getOrSet('orders:list', load, options)).toEqual({ orders: [1, 2, 3], load: 1 });
    await sleep(1200); // each environment's knowledge of the tag's state is due for a reread, and the value's recheck too
    // The tag's state item is throttled (BatchGetItem); the value's own item and its lease answer.
    proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] });
    const answers = await Promise.all(envs.map((env) => env.getOrSet('orders:list', load, options)));
    expect(answers).toEqual(Array.from({ length: 5 }, () => ({ orders: [1, 2, 3], load: 1 })));
    expect(upstream).toBe(1);
    expect(envs.reduce((n, env) => n + env.stats().memoryHits, 0)).toBeGreaterThanOrEqual(5);
  });

  it('a value fetched meanwhile is stored, stamped with the states last known here', async () => {
    const tableName = await db.newTable();
    const [env, other] = await fleet(2, tableName, { endpoint: proxy.endpoint, memory: { ttlSeconds: 1 }, timeoutMs: 300 });
    expect(await env!.set('orders:count', 3, options)).toBe(true); // the tag's state is known here
    await sleep(1200);
    proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] });
    expect(await env!.getOrSet('orders:list', async () => [1, 2, 3], options)).toEqual([1, 2, 3]);
    proxy.setFaults({});
    // Stored: another environment answers it from DynamoDB, fresh (the tag's state has not moved since).
    expect(await other!.get('orders:list')).toEqual([1, 2, 3]);
  });

  it('never answer a value the states last known here show invalidated', async () => {
    const tableName = await db.newTable();
    const [env, other] = await fleet(2, tableName, { endpoint: proxy.endpoint, memory: { ttlSeconds: 1 }, timeoutMs: 300, lease: { waitMs: 500 } });
    let upstream = 0;
    const load = async () => ({ load: ++upstream });
    expect(await env!.getOrSet('orders:list', load, options)).toEqual({ load: 1 });
    expect(await env!.getOrSet('orders:count', load, options)).toEqual({ load: 2 });
    expect(await other!.invalidateTags(['orders'])).toBe(true);
    await sleep(1200);
    // The environment learns of the invalidation through one value; the other stays in its memory, stamped with the old state.
    expect(await env!.get('orders:count')).toBeUndefined();
    await sleep(1200); // what it knows of the tag is due for a reread again
    proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] });
    expect(await env!.getOrSet('orders:list', load, options)).toEqual({ load: 3 });
  });
});

describe('soft purge (mode: stale)', () => {
  it('values are answered stale while exactly one environment refreshes them, then fresh', async () => {
    const tableName = await db.newTable();
    const envs = await fleet(10, tableName, { memory: false });
    await envs[0]!.set('report', { version: 1 }, { ttlSeconds: 600, staleWhileRevalidateSeconds: 60, tags: ['reports'] });
    expect(await envs[0]!.invalidateTags(['reports'], { mode: 'stale' })).toBe(true);
    let fetches = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let answered = 0;
    const answers = envs.map((env) =>
      env
        .getOrSet(
          'report',
          async () => {
            fetches += 1;
            await gate;
            return { version: 2 };
          },
          { ttlSeconds: 600, staleWhileRevalidateSeconds: 60, tags: ['reports'] },
        )
        .finally(() => (answered += 1)),
    );
    // Everyone but the refresher is answered with the stale value while the refresh is still held.
    await vi.waitFor(() => expect(answered).toBe(9), { timeout: 30_000, interval: 20 });
    expect(fetches).toBe(1);
    release();
    const all = await Promise.all(answers);
    expect(fetches).toBe(1);
    const versions = all.map((value) => value.version).sort();
    expect(versions).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    expect(envs.reduce((n, env) => n + env.stats().staleHits, 0)).toBe(9);
    expect(envs.reduce((n, env) => n + env.stats().leaseWins, 0)).toBe(1);
    // After the refresh: fresh everywhere, no other fetch.
    for (const env of envs) expect(await env.getOrSet('report', async () => ({ version: 3 }), { ttlSeconds: 600, tags: ['reports'] })).toEqual({ version: 2 });
    expect(fetches).toBe(1);
  });

  it('get never answers a soft-purged value (it is not fresh), and without a stale window it is refetched', async () => {
    const { cache } = await db.newCache();
    await cache.set('k', 1, { tags: ['t'] });
    await cache.invalidateTags(['t'], { mode: 'stale' });
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', async () => 2, { tags: ['t'] })).toBe(2);
  });

  it('mode: expire after a soft purge ends the stale answers too', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.set('k', 1, { staleWhileRevalidateSeconds: 60, tags: ['t'] });
    await cache.invalidateTags(['t'], { mode: 'stale' });
    await cache.invalidateTags(['t'], { mode: 'expire' });
    let calls = 0;
    expect(await cache.getOrSet('k', async () => ++calls + 1, { staleWhileRevalidateSeconds: 60, tags: ['t'] })).toBe(2);
  });
});

describe('monotonic, authenticated tag state (encryption on)', () => {
  async function invalidatedValue(options: DynamoCacheOptions = {}) {
    const tableName = await db.newTable();
    const [writer] = await fleet(1, tableName, { encryption, memory: false, ...options });
    await writer!.set('doc', { version: 1 }, { ttlSeconds: 600, staleWhileRevalidateSeconds: 600, tags: ['doc'] });
    const before = (await tagItem(tableName, '#dc:t:doc'))!;
    expect(before.dc_sig?.S).toMatch(/^k1:/);
    const [warm] = await fleet(1, tableName, { encryption, memory: false, ...options });
    expect(await warm!.get('doc')).toEqual({ version: 1 });
    await writer!.invalidateTags(['doc']);
    expect(await warm!.get('doc')).toEqual({ version: 1 }); // within memory.ttlSeconds: not seen yet
    return { tableName, writer: writer!, warm: warm!, before };
  }

  it('a deleted tag item brings nothing back, in a cold or a warm environment', async () => {
    const { tableName, warm } = await invalidatedValue();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 30_001);
    expect(await warm.get('doc')).toBeUndefined(); // sees the invalidation
    await deleteItem(tableName, '#dc:t:doc');
    vi.setSystemTime(Date.now() + 30_001);
    expect(await warm.get('doc')).toBeUndefined();
    const [cold] = await fleet(1, tableName, { encryption, memory: false });
    expect(await cold!.get('doc')).toBeUndefined();
    // Nor stale: the refresh fetches, and the next value is valid everywhere.
    let calls = 0;
    expect(await cold!.getOrSet('doc', async () => ({ version: 2, call: ++calls }), { staleWhileRevalidateSeconds: 600, tags: ['doc'] })).toEqual({ version: 2, call: 1 });
    vi.setSystemTime(Date.now() + 30_001);
    expect(await warm.get('doc')).toEqual({ version: 2, call: 1 });
  });

  it('an old tag item put back never takes a warm environment back; the next write under the tag moves the state past it', async () => {
    const { tableName, warm, before } = await invalidatedValue();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 30_001);
    expect(await warm.get('doc')).toBeUndefined();
    await putItem(tableName, before); // the state from before the invalidation, signature and all
    vi.setSystemTime(Date.now() + 30_001);
    expect(await warm.get('doc')).toBeUndefined();
    expect(await warm.getOrSet('doc', async () => ({ version: 2 }), { staleWhileRevalidateSeconds: 600, tags: ['doc'] })).toEqual({ version: 2 });
    const after = (await tagItem(tableName, '#dc:t:doc'))!;
    expect(Number(after.dc_version!.N)).toBeGreaterThan(Number(before.dc_version!.N));
    const [cold] = await fleet(1, tableName, { encryption, memory: false });
    expect(await cold!.get('doc')).toEqual({ version: 2 });
  });

  it('the documented limit: a cold environment cannot tell a full replay of old items (tag and value) from the truth', async () => {
    const { tableName, before } = await invalidatedValue();
    await putItem(tableName, before);
    const [cold] = await fleet(1, tableName, { encryption, memory: false });
    expect(await cold!.get('doc')).toEqual({ version: 1 });
  });

  it('a tag item that does not authenticate is no state: its values miss (and are counted corrupt), and the next write replaces it', async () => {
    const tableName = await db.newTable();
    const { cache, logger } = await db.newCache({ tableName, encryption, memory: false });
    await cache.set('doc', 1, { tags: ['doc'] });
    const item = (await tagItem(tableName, '#dc:t:doc'))!;
    await putItem(tableName, { ...item, dc_token: { S: 'forged' }, dc_version: { N: String(Number(item.dc_version!.N) + 10 ** 9) } });
    const { cache: cold } = await db.newCache({ tableName, encryption, memory: false, logger });
    expect(await cold.get('doc')).toBeUndefined();
    expect(cold.stats().corruptItems).toBe(1);
    expect(logger.warnings.some((w) => /tag item does not authenticate/.test(w.message))).toBe(true);
    expect(await cold.set('doc', 2, { tags: ['doc'] })).toBe(true);
    expect((await tagItem(tableName, '#dc:t:doc'))!.dc_token!.S).not.toBe('forged');
    expect(await cold.get('doc')).toBe(2);
  });

  it('stripping the tags off an encrypted value does not free it: the value no longer authenticates', async () => {
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName, encryption, memory: false });
    await cache.set('doc', 1, { tags: ['doc'] });
    await cache.invalidateTags(['doc']);
    const value = (await tagItem(tableName, 'doc'))!;
    const { dc_tags: _stripped, ...rest } = value;
    await putItem(tableName, rest);
    expect(await cache.get('doc')).toBeUndefined();
    expect(cache.stats().corruptItems).toBe(1);
  });

  it('without encryption, too, a deleted tag item leaves the value invalid', async () => {
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName, memory: false });
    await cache.set('doc', 1, { tags: ['doc'] });
    await deleteItem(tableName, '#dc:t:doc');
    const { cache: cold } = await db.newCache({ tableName, memory: false });
    expect(await cold.get('doc')).toBeUndefined();
  });
});

describe('bad tags are clear errors', () => {
  it.each([
    ['not an array', 'user:42', /tags must be an array of strings, got string/],
    ['an empty tag', [''], /tags\[0\]: a tag must not be empty/],
    ['a number', ['a', 42], /tags\[1\]: a tag must be a string, got number/],
    ['257 characters', ['x'.repeat(257)], /at most 256 characters, got 257/],
    ['a control character', ['a\nb'], /must not contain control characters/],
    ['a lone surrogate', ['\ud800'], /well-formed Unicode/],
    ['65 tags', Array.from({ length: 65 }, (_, i) => `t${i}`), /at most 64 tags per value, got 65/],
    ['a frozen array (frozen valid ones are checked once)', Object.freeze(['a', '']), /tags\[1\]: a tag must not be empty/],
  ])('%s', async (_name, tags, message) => {
    const { cache } = await db.newCache();
    await expect(cache.set('k', 1, { tags: tags as string[] })).rejects.toThrow(message);
    await expect(cache.set('k', 1, { tags: tags as string[] })).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(cache.getOrSet('k', async () => 1, { tags: tags as string[] })).rejects.toThrow(message);
    await expect(cache.acquire('k', { tags: tags as string[] })).rejects.toThrow(message);
    expect(() => cache.wrap(async () => 1, { key: () => 'k', tags: tags as string[] })).toThrow(message);
  });

  it('256 characters count code points (an emoji is one), and 64 distinct tags are fine (repeats count once)', async () => {
    const { cache } = await db.newCache();
    expect(await cache.set('k', 1, { tags: ['😀'.repeat(256)] })).toBe(true);
    expect(await cache.set('k', 1, { tags: [...Array.from({ length: 64 }, (_, i) => `t${i}`), 't0'] })).toBe(true);
  });

  it('invalidateTags checks its tags and its mode (any number of tags)', async () => {
    const { cache } = await db.newCache();
    await expect(cache.invalidateTags([''])).rejects.toThrow(/invalidateTags\(\) tags\[0\]: a tag must not be empty/);
    await expect(cache.invalidateTags(['a'], { mode: 'soft' as never })).rejects.toThrow(/mode must be 'expire' or 'stale'/);
    await expect(cache.invalidateTags(['a'], { ttlSeconds: 1 } as never)).rejects.toThrow(/Unknown option "ttlSeconds"/);
    expect(await cache.invalidateTags(Array.from({ length: 100 }, (_, i) => `t${i}`))).toBe(true);
    // A frozen array accepted by invalidateTags is not thereby accepted on a value, which takes at most 64.
    const many = Object.freeze(Array.from({ length: 65 }, (_, i) => `t${i}`));
    expect(await cache.invalidateTags(many)).toBe(true);
    await expect(cache.set('k', 1, { tags: many })).rejects.toThrow(/at most 64 tags per value, got 65/);
  });
});
