// Revalidation through the handler (issue 23, item 4), on by default (`revalidate: false` per route turns it off): a stale stored
// response with the handler's own validator is revalidated, the handler getting If-None-Match /
// If-Modified-Since; its 304 freshens the stored response (RFC 9111 3.2, 4.3.4), its 200 replaces it; a
// client's conditional request is answered 304 from a fresh stored response; across environments one
// revalidates. Through the real @middy/core and dynalite.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { httpMemoKey } from '../src/middleware/memo-key.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, httpApiEvent, type HttpSource } from './support/http-events.ts';
import { header, headerOf, json, setupMiddy, type Handler, type Response } from './support/middy-harness.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

// Default options: revalidation is on unless a route turns it off.
const REVALIDATE: DynamoCacheMiddlewareOptions = { memory: false, response: { ttlSeconds: 600 } };

/** The conditional request fields each handler run got (`null`: absent). */
type Seen = { ifNoneMatch: string | null; ifModifiedSince: string | null };

/** A handler answering by `answer(run, seen)`, recording what conditional fields each run got. */
async function origin(answer: (run: number, seen: Seen) => Response, options: DynamoCacheMiddlewareOptions = REVALIDATE, tableName?: string) {
  const seen: Seen[] = [];
  const handler: Handler = async (e) => {
    const fields = { ifNoneMatch: headerOf(e, 'if-none-match') ?? null, ifModifiedSince: headerOf(e, 'if-modified-since') ?? null };
    seen.push(fields);
    return answer(seen.length, fields);
  };
  const setup = await setupMiddy(db, handler, { ...options, ...(tableName === undefined ? {} : { tableName }) });
  return { ...setup, seen };
}

const notModified = (headers: Record<string, string> = {}): Response => ({ statusCode: 304, headers, body: '' });

describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s', (source) => {
  const get = (headers: Record<string, string> = {}) => HTTP_SOURCES[source]({ path: '/report', headers });

  it('a stale response is revalidated with its ETag; the 304 freshens it and its stored content is sent', async () => {
    const { invoke, seen } = await origin((run) =>
      run === 1
        ? json(200, { report: 'big' }, { ETag: '"v1"', 'Cache-Control': 'max-age=2', 'X-Version': '1' })
        : notModified({ ETag: '"v1"', 'Cache-Control': 'max-age=60', 'X-Version': '2', 'Content-Length': '0', Connection: 'X-Hop', 'X-Hop': 'no' }),
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(get());
    vi.setSystemTime(Date.now() + 3000);
    const revalidated = await invoke(get());
    expect(seen[1]).toEqual({ ifNoneMatch: '"v1"', ifModifiedSince: null });
    expect([revalidated.statusCode, JSON.parse(revalidated.body), header(revalidated, 'X-Cache')]).toEqual([200, { report: 'big' }, 'RefreshHit']);
    // RFC 9111 3.2: the 304's fields replace the stored ones, except Content-Length and hop-by-hop fields.
    expect([header(revalidated, 'X-Version'), header(revalidated, 'Cache-Control'), header(revalidated, 'Content-Length'), header(revalidated, 'X-Hop')]).toEqual([
      '2',
      'max-age=60',
      undefined,
      undefined,
    ]);
    // Fresh again for the 304's max-age: answered from the cache, freshened.
    vi.setSystemTime(Date.now() + 30_000);
    const hit = await invoke(get());
    expect([header(hit, 'X-Cache'), header(hit, 'X-Version'), seen.length]).toEqual(['Hit', '2', 2]);
  });

  it('a 200 answering the revalidation replaces the stored response', async () => {
    const { invoke, seen } = await origin((run) => json(200, { run }, { ETag: `"v${run}"`, 'Cache-Control': 'max-age=2' }));
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(get());
    vi.setSystemTime(Date.now() + 3000);
    const replaced = await invoke(get());
    expect([JSON.parse(replaced.body), header(replaced, 'X-Cache'), seen[1]!.ifNoneMatch]).toEqual([{ run: 2 }, 'Miss', '"v1"']);
    expect(JSON.parse((await invoke(get())).body)).toEqual({ run: 2 });
  });

  it('with Last-Modified only, the handler gets If-Modified-Since and never the ETag the middleware made', async () => {
    const lastModified = 'Tue, 01 Dec 2026 10:00:00 GMT';
    const { invoke, seen } = await origin((run) => (run === 1 ? json(200, { v: 1 }, { 'Last-Modified': lastModified, 'Cache-Control': 'max-age=2' }) : notModified()));
    vi.useFakeTimers({ toFake: ['Date'] });
    const first = await invoke(get());
    expect(header(first, 'ETag')).toBeDefined(); // generated for clients
    vi.setSystemTime(Date.now() + 3000);
    const revalidated = await invoke(get());
    expect(seen[1]).toEqual({ ifNoneMatch: null, ifModifiedSince: lastModified });
    expect([JSON.parse(revalidated.body), header(revalidated, 'X-Cache')]).toEqual([{ v: 1 }, 'RefreshHit']);
    // And after a revalidation too, though the freshened response carries the generated ETag.
    vi.setSystemTime(Date.now() + 3000);
    expect(header(await invoke(get()), 'X-Cache')).toBe('RefreshHit');
    expect(seen[2]).toEqual({ ifNoneMatch: null, ifModifiedSince: lastModified });
  });

  it('the client’s own conditional fields are replaced by the stored response’s, and its condition is answered from the result', async () => {
    const { invoke, seen } = await origin((run) => (run === 1 ? json(200, { v: 1 }, { ETag: '"v1"', 'Cache-Control': 'max-age=2' }) : notModified({ ETag: '"v1"' })));
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(get());
    vi.setSystemTime(Date.now() + 3000);
    const answer = await invoke(get({ 'If-None-Match': '"v1"', 'If-Modified-Since': 'Tue, 01 Dec 2026 10:00:00 GMT' }));
    expect(seen[1]).toEqual({ ifNoneMatch: '"v1"', ifModifiedSince: null });
    expect([answer.statusCode, answer.body]).toEqual([304, '']);
  });

  it('no-cache with a validator is stored, and revalidated before each use', async () => {
    const { invoke, seen } = await origin((run) => (run === 1 ? json(200, { v: 1 }, { ETag: '"v1"', 'Cache-Control': 'no-cache' }) : notModified({ ETag: '"v1"' })));
    await invoke(get());
    for (let i = 0; i < 2; i++) expect(JSON.parse((await invoke(get())).body)).toEqual({ v: 1 });
    expect(seen.map((s) => s.ifNoneMatch)).toEqual([null, '"v1"', '"v1"']);
  });

  it('a stale must-revalidate response is revalidated, never served stale (stale-while-revalidate notwithstanding)', async () => {
    const options: DynamoCacheMiddlewareOptions = { memory: false, response: { ttlSeconds: 600, staleWhileRevalidateSeconds: 600 } };
    const { invoke, seen } = await origin((run) => (run === 1 ? json(200, { v: 1 }, { ETag: '"v1"', 'Cache-Control': 'max-age=2, must-revalidate' }) : notModified({ ETag: '"v1"' })), options);
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(get());
    vi.setSystemTime(Date.now() + 3000);
    expect(header(await invoke(get()), 'X-Cache')).toBe('RefreshHit');
    expect(seen[1]!.ifNoneMatch).toBe('"v1"');
  });

  it('with revalidate: false, or without a validator of the handler’s, the handler is never asked conditionally', async () => {
    const plain = await origin((run) => json(200, { run }, { ETag: '"v1"', 'Cache-Control': 'max-age=2' }), { memory: false, response: { ttlSeconds: 600, revalidate: false } });
    const unvalidated = await origin((run) => json(200, { run }, { 'Cache-Control': 'max-age=2' }));
    vi.useFakeTimers({ toFake: ['Date'] });
    for (const { invoke } of [plain, unvalidated]) await invoke(get());
    vi.setSystemTime(Date.now() + 3000);
    for (const { invoke, seen } of [plain, unvalidated]) {
      expect(JSON.parse((await invoke(get())).body)).toEqual({ run: 2 });
      expect(seen[1]).toEqual({ ifNoneMatch: null, ifModifiedSince: null });
    }
  });

  it('a 304 about another response (another strong ETag) updates nothing and goes out as it is', async () => {
    const { invoke } = await origin((run) => (run === 1 ? json(200, { v: 1 }, { ETag: '"v1"', 'Cache-Control': 'max-age=2' }) : notModified({ ETag: '"other"' })));
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(get());
    vi.setSystemTime(Date.now() + 3000);
    const answer = await invoke(get());
    expect([answer.statusCode, header(answer, 'X-Cache')]).toEqual([304, 'Miss']);
  });
});

describe('the freshened response', () => {
  it('is as old as the 304 says, not as the stored response was', async () => {
    // Stored already stale (Age beyond max-age), kept only to be revalidated; the 304 has no Age: it is new.
    const { invoke, seen } = await origin((run) => (run === 1 ? json(200, { v: 1 }, { ETag: '"v1"', 'Cache-Control': 'max-age=60', Age: '100' }) : notModified({ ETag: '"v1"' })));
    await invoke(httpApiEvent({ path: '/aged' }));
    expect(header(await invoke(httpApiEvent({ path: '/aged' })), 'X-Cache')).toBe('RefreshHit');
    const hit = await invoke(httpApiEvent({ path: '/aged' }));
    expect([header(hit, 'X-Cache'), header(hit, 'Age'), seen.length]).toEqual(['Hit', '0', 2]);
  });
});

describe('client conditional requests', () => {
  it('a fresh stored response answers If-None-Match and If-Modified-Since with a 304, without the handler', async () => {
    const lastModified = 'Tue, 01 Dec 2026 10:00:00 GMT';
    const { invoke, handlerSpy } = await setupMiddy(db, async () => json(200, { v: 1 }, { ETag: '"v1"', 'Last-Modified': lastModified, 'Cache-Control': 'max-age=60' }));
    await invoke(httpApiEvent({ path: '/doc' }));
    const byTag = await invoke(httpApiEvent({ path: '/doc', headers: { 'if-none-match': 'W/"v1"' } }));
    const byDate = await invoke(httpApiEvent({ path: '/doc', headers: { 'if-modified-since': lastModified } }));
    const earlier = await invoke(httpApiEvent({ path: '/doc', headers: { 'if-modified-since': 'Mon, 30 Nov 2026 10:00:00 GMT' } }));
    // If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    const both = await invoke(httpApiEvent({ path: '/doc', headers: { 'if-none-match': '"v0"', 'if-modified-since': lastModified } }));
    expect([byTag.statusCode, byDate.statusCode, earlier.statusCode, both.statusCode]).toEqual([304, 304, 200, 200]);
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });
});

describe('across the fleet', () => {
  it('one environment revalidates: the others wait for the freshened response (the lease)', async () => {
    const tableName = await db.newTable();
    let conditional = 0;
    const environments = await Promise.all(
      Array.from({ length: 5 }, () =>
        origin(
          (_run, seen) => {
            if (seen.ifNoneMatch === null) return json(200, { v: 1 }, { ETag: '"v1"', 'Cache-Control': 'max-age=2' });
            conditional += 1;
            return notModified({ ETag: '"v1"', 'Cache-Control': 'max-age=60' });
          },
          REVALIDATE,
          tableName,
        ),
      ),
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    await environments[0]!.invoke(httpApiEvent({ path: '/popular' }));
    vi.setSystemTime(Date.now() + 3000);
    const answers = await Promise.all(environments.map(({ invoke }) => invoke(httpApiEvent({ path: '/popular' }))));
    expect(answers.map((a) => JSON.parse(a.body))).toEqual(Array(5).fill({ v: 1 }));
    expect(conditional).toBe(1);
    expect(environments.reduce((runs, e) => runs + e.seen.length, 0)).toBe(2);
  });
});

describe('the stored-response format is a contract', () => {
  it('a response stored by the previous version (no revalidation fields) is read and served', async () => {
    const { invoke, handlerSpy, tableName } = await setupMiddy(db, async () => json(200, { from: 'handler' }), { response: { ttlSeconds: 60, keyPrefix: 'legacy', invalidateOnUnsafeMethods: false } });
    const { cache } = await db.newCache({ tableName });
    const event = httpApiEvent({ path: '/legacy' });
    const key = httpMemoKey({
      prefix: 'legacy',
      method: 'GET',
      domain: event.requestContext.domainName,
      stage: event.requestContext.stage,
      resource: ['url', '/legacy', []],
      vary: [],
      identity: [],
    });
    const written = { v: 1, kind: 'http', response: { statusCode: 200, headers: { 'content-type': 'application/json', ETag: '"old"' }, body: '{"from":"b24f27a"}' }, storedAt: Date.now(), age: 0, ttlSeconds: 60 };
    await cache.set(key, written, { ttlSeconds: 60 });
    const answer = await invoke(event);
    expect([JSON.parse(answer.body), header(answer, 'X-Cache')]).toEqual([{ from: 'b24f27a' }, 'Hit']);
    expect(handlerSpy).not.toHaveBeenCalled();
  });
});
