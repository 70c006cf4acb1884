// A `shared` route is matched strictly on the path as received (the one the handler routes on): a
// personal path that only canonicalizes into a shared route (percent-encoded slashes, dot segments) is
// keyed per user, never stored for everyone (web cache deception).
import { describe, expect, it } from 'vitest';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, headerOf, json, pathOf, setupMiddy, whoIs } from './support/middy-harness.ts';

const db = useDynalite();

const SOURCES: Array<[string, HttpSource, RequestSpec]> = [
  ['HTTP API behind ANY /{proxy+}', 'HTTP API (v2)', { route: '/{proxy+}' }],
  ['HTTP API $default', 'HTTP API (v2)', { route: '$default' }],
  ['Function URL', 'Function URL', {}],
  ['ALB', 'ALB', {}],
];

describe.each(SOURCES)('%s', (_name, source, base) => {
  it("a personal path that canonicalizes into a shared route is never answered to another user", async () => {
    // A handler with a personal area (`/me/...`, keyed by the caller) and a public catalogue.
    const { invoke } = await setupMiddy(
      db,
      async (e) => {
        const path = pathOf(e);
        if (path.startsWith('/me/')) return json(200, { secretOf: headerOf(e, 'authorization') ?? 'anonymous', path });
        return json(200, { catalogue: true, path });
      },
      { response: { ttlSeconds: 60, routes: { 'GET /catalog/{proxy+}': { shared: true } } } },
    );
    const crafted = '/me/x%2F..%2F..%2Fcatalog%2Fshoes';
    // The victim follows a link the attacker sent; the browser keeps %2F as is.
    const victim = await invoke(HTTP_SOURCES[source]({ ...base, path: crafted, headers: { authorization: 'Bearer victim-token' } }));
    expect(JSON.parse(victim.body).secretOf).toBe('Bearer victim-token');
    // The attacker, without the victim's credentials, asks for the same URL.
    const attacker = await invoke(HTTP_SOURCES[source]({ ...base, path: crafted, headers: { authorization: 'Bearer attacker-token' } }));
    expect(JSON.parse(attacker.body).secretOf, `X-Cache: ${header(attacker, 'X-Cache')}`).not.toBe('Bearer victim-token');
  });
});

// The same asymmetry for case: a `false` route matches every case, but a per-route `shared: false` exception
// applies only to its exact case, so with `shared: true` as the default a case-insensitive router (Express's
// default, many hand-written ones) serves `/ME` as the personal `/me` while the cache stores it as shared.
describe.each(SOURCES)('%s: a personal exception to shared routes', (_name, source, base) => {
  it('is not bypassed by another case of its path', async () => {
    const { invoke } = await setupMiddy(
      db,
      async (e) => {
        const path = pathOf(e).toLowerCase(); // a case-insensitive router
        if (path === '/me') return json(200, { secretOf: headerOf(e, 'authorization') ?? 'anonymous' });
        return json(200, { public: true });
      },
      { response: { ttlSeconds: 60, shared: true, routes: { 'GET /me': { shared: false } } } },
    );
    const victim = await invoke(HTTP_SOURCES[source]({ ...base, path: '/ME', headers: { authorization: 'Bearer victim-token' } }));
    expect(JSON.parse(victim.body).secretOf).toBe('Bearer victim-token');
    const attacker = await invoke(HTTP_SOURCES[source]({ ...base, path: '/ME' }));
    expect(JSON.parse(attacker.body).secretOf, `X-Cache: ${header(attacker, 'X-Cache')}`).not.toBe('Bearer victim-token');
  });
});

// RFC 9111 3.5 (issue 23, item 2): a shared cache stores a response to a request with credentials only when
// the response allows it (`public`, `s-maxage`, `must-revalidate`): the handler may have answered for that
// caller alone. Credentials: `Authorization`, the configured credential headers, an authorizer identity.
describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s: RFC 9111 3.5 on shared routes', (source) => {
  const CREDENTIALS: Array<[string, RequestSpec]> = [
    ['an Authorization header', { headers: { authorization: 'Bearer alice' } }],
    ['a configured credential header', { headers: { 'x-session': 'alice-session' } }],
    ['an authorizer identity', { principal: 'alice' }],
  ];
  const setup = (cacheControl?: string) =>
    setupMiddy(db, async (e) => json(200, { for: whoIs(e), auth: headerOf(e, 'authorization') ?? headerOf(e, 'x-session') ?? null }, cacheControl === undefined ? {} : { 'Cache-Control': cacheControl }), {
      response: { ttlSeconds: 60, shared: true, credentialHeaders: ['authorization', 'x-session'] },
    });

  it.each(CREDENTIALS)('a response to a request with %s is not stored without public, s-maxage or must-revalidate', async (_kind, spec) => {
    const { invoke, handlerSpy } = await setup('max-age=60');
    await invoke(HTTP_SOURCES[source]({ path: '/news', ...spec }));
    const anonymous = await invoke(HTTP_SOURCES[source]({ path: '/news' }));
    expect(JSON.parse(anonymous.body)).toEqual({ for: 'anonymous', auth: null });
    expect(header(anonymous, 'X-Cache')).toBe('Miss');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it.each(['public', 's-maxage=60', 'max-age=60, must-revalidate'])('with Cache-Control: %s it is stored and served to anyone', async (cacheControl) => {
    const { invoke, handlerSpy } = await setup(cacheControl);
    await invoke(HTTP_SOURCES[source]({ path: '/news', headers: { authorization: 'Bearer alice' } }));
    const anonymous = await invoke(HTTP_SOURCES[source]({ path: '/news' }));
    expect(header(anonymous, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });

  it('a targeted field speaks for this cache: DynamoCache-Control: public allows it, whatever Cache-Control says', async () => {
    const { invoke, handlerSpy } = await setupMiddy(db, async () => json(200, { news: 1 }, { 'Cache-Control': 'private', 'DynamoCache-Control': 'public, max-age=60' }), {
      response: { ttlSeconds: 60, shared: true },
    });
    await invoke(HTTP_SOURCES[source]({ path: '/news', headers: { authorization: 'Bearer alice' } }));
    expect(header(await invoke(HTTP_SOURCES[source]({ path: '/news' })), 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });

  it('an anonymous request’s response is stored as before, and answers requests with credentials too', async () => {
    const { invoke, handlerSpy } = await setup('max-age=60');
    await invoke(HTTP_SOURCES[source]({ path: '/news' }));
    expect(header(await invoke(HTTP_SOURCES[source]({ path: '/news', headers: { authorization: 'Bearer bob' } })), 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });
});
