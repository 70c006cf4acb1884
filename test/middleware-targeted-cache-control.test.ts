// RFC 9213 targeted cache control (issue 23, item 3): `DynamoCache-Control` (this cache alone) and
// `CDN-Cache-Control` replace Cache-Control and Expires for the stored response, the most specific one
// present winning whole; a field that is not a valid Structured Field is ignored; the field meant for this
// cache alone does not reach the client. Through the real @middy/core and dynalite, on each event source.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionsError } from '../src/errors.ts';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, type HttpSource } from './support/http-events.ts';
import { header, json, setupMiddy } from './support/middy-harness.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A handler answering with `headers`, asked twice for one path (`afterMs` apart, on a fake clock); resolves
 * both answers and how often the handler ran (2: the first response was not stored, or no longer fresh).
 */
async function twice(source: HttpSource, headers: Record<string, string>, options: DynamoCacheMiddlewareOptions = {}, afterMs = 0) {
  const { invoke, handlerSpy } = await setupMiddy(db, async () => json(200, { ok: true }, headers), { ...options, response: { ttlSeconds: 3600, ...options.response } });
  vi.useFakeTimers({ toFake: ['Date'] });
  const first = await invoke(HTTP_SOURCES[source]({ path: '/doc' }));
  vi.setSystemTime(Date.now() + afterMs);
  const second = await invoke(HTTP_SOURCES[source]({ path: '/doc' }));
  return { first, second, runs: handlerSpy.mock.calls.length };
}

describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s', (source) => {
  it('the issue’s case: Cache-Control: private, max-age=0 for the client, five minutes here', async () => {
    const headers = { 'Cache-Control': 'private, max-age=0', 'DynamoCache-Control': 'max-age=300' };
    const fresh = await twice(source, headers, {}, 299_000);
    expect([fresh.runs, header(fresh.second, 'X-Cache')]).toEqual([1, 'Hit']);
    expect(header(fresh.second, 'Cache-Control')).toBe('private, max-age=0');
    expect(header(fresh.first, 'DynamoCache-Control')).toBeUndefined();
    expect(header(fresh.second, 'DynamoCache-Control')).toBeUndefined();
    expect((await twice(source, headers, {}, 301_000)).runs).toBe(2);
  });

  it('CDN-Cache-Control replaces Cache-Control whole, both ways, and Expires with it', async () => {
    expect((await twice(source, { 'Cache-Control': 'no-store', 'CDN-Cache-Control': 'max-age=600' })).runs).toBe(1);
    expect((await twice(source, { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': 'no-store' })).runs).toBe(2);
    expect((await twice(source, { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': 'private' })).runs).toBe(2);
    expect((await twice(source, { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': 'max-age=2' }, {}, 3000)).runs).toBe(2);
    expect((await twice(source, { 'CDN-Cache-Control': 'max-age=600', Expires: 'Thu, 01 Jan 1970 00:00:00 GMT' })).runs).toBe(1);
    const forwarded = await twice(source, { 'CDN-Cache-Control': 'max-age=600' });
    expect([header(forwarded.first, 'CDN-Cache-Control'), header(forwarded.second, 'CDN-Cache-Control')]).toEqual(['max-age=600', 'max-age=600']);
  });

  it('DynamoCache-Control wins over CDN-Cache-Control, whole: their directives are never merged', async () => {
    expect((await twice(source, { 'DynamoCache-Control': 'max-age=600', 'CDN-Cache-Control': 'no-store' })).runs).toBe(1);
    expect((await twice(source, { 'DynamoCache-Control': 'no-store', 'CDN-Cache-Control': 'max-age=600', 'Cache-Control': 'max-age=600' })).runs).toBe(2);
    // The CDN's max-age would keep it longer; the winning field says nothing of freshness: the route's 2 s apply.
    const route = { response: { ttlSeconds: 2 } };
    expect((await twice(source, { 'DynamoCache-Control': 'public', 'CDN-Cache-Control': 'max-age=600' }, route, 3000)).runs).toBe(2);
  });

  it('a targeted field that is not a valid Structured Field is ignored: Cache-Control applies', async () => {
    for (const invalid of ['max-age=600, &&&&&', 'MaX-aGe=600', 'max-age =600', 'max-age=600,']) {
      expect((await twice(source, { 'Cache-Control': 'no-store', 'DynamoCache-Control': invalid })).runs, invalid).toBe(2);
    }
    // An empty one too, so the CDN field below it in the list applies.
    expect((await twice(source, { 'DynamoCache-Control': '', 'CDN-Cache-Control': 'max-age=600', 'Cache-Control': 'no-store' })).runs).toBe(1);
  });

  it('a valid field whose max-age is not an Integer makes the response stale, as an invalid max-age does', async () => {
    for (const value of ['max-age="600"', 'max-age=600.0', 'max-age=-1', 'max-age=?1']) {
      expect((await twice(source, { 'Cache-Control': 'max-age=600', 'DynamoCache-Control': value })).runs, value).toBe(2);
    }
  });

  it('a misspelt value never loosens a restriction: no-store=?0 still forbids storing', async () => {
    expect((await twice(source, { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': 'no-store=?0, max-age=600' })).runs).toBe(2);
  });
});

describe('options', () => {
  it('removeTargetedFields: [] forwards DynamoCache-Control; a CDN-Cache-Control can be removed too', async () => {
    const forwarded = await twice('HTTP API (v2)', { 'DynamoCache-Control': 'max-age=600' }, { response: { removeTargetedFields: [] } });
    expect([header(forwarded.first, 'DynamoCache-Control'), header(forwarded.second, 'DynamoCache-Control')]).toEqual(['max-age=600', 'max-age=600']);
    const removed = await twice('HTTP API (v2)', { 'CDN-Cache-Control': 'max-age=600', 'DynamoCache-Control': 'max-age=60' }, { response: { removeTargetedFields: ['DynamoCache-Control', 'cdn-cache-control'] } });
    expect(removed.runs).toBe(1);
    expect([header(removed.second, 'CDN-Cache-Control'), header(removed.second, 'DynamoCache-Control')]).toEqual([undefined, undefined]);
  });

  it('targetedFields: [] ignores targeted fields (and passes them through), a custom list is used in its order', async () => {
    const ignored = await twice('HTTP API (v2)', { 'CDN-Cache-Control': 'no-store' }, { response: { targetedFields: [], removeTargetedFields: [] } });
    expect(ignored.runs).toBe(1);
    expect(header(ignored.second, 'CDN-Cache-Control')).toBe('no-store');
    const custom = { response: { targetedFields: ['CDN-Cache-Control', 'Acme-Cache-Control'], removeTargetedFields: [] } };
    expect((await twice('HTTP API (v2)', { 'CDN-Cache-Control': 'no-store', 'Acme-Cache-Control': 'max-age=600' }, custom)).runs).toBe(2);
    expect((await twice('HTTP API (v2)', { 'DynamoCache-Control': 'no-store', 'Acme-Cache-Control': 'max-age=600' }, custom)).runs).toBe(1);
  });

  it('a field removed must be one the cache uses; names must be header names', () => {
    const make = (response: DynamoCacheMiddlewareOptions['response']) => () => dynamoCache({ tableName: 'app-cache', response });
    expect(make({ removeTargetedFields: ['CDN-Cache-Control'], targetedFields: ['DynamoCache-Control'] })).toThrow(
      new InvalidOptionsError('response.removeTargetedFields: cdn-cache-control is not in response.targetedFields, so it must be passed through'),
    );
    expect(make({ removeTargetedFields: ['CDN-Cache-Control'] })).not.toThrow();
    expect(make({ targetedFields: ['not a name'] })).toThrow(new InvalidOptionsError('response.targetedFields must be an array of header names'));
    expect(make({ targetedFields: 'CDN-Cache-Control' as never })).toThrow(new InvalidOptionsError('response.targetedFields must be an array of header names'));
  });
});
