// A `shared` route is matched strictly on the path as received (the one the handler routes on): a
// personal path that only canonicalizes into a shared route (percent-encoded slashes, dot segments) is
// keyed per user, never stored for everyone (web cache deception).
import { describe, expect, it } from 'vitest';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, headerOf, json, pathOf, setupMiddy } from './support/middy-harness.ts';

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
