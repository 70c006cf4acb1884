// What a memoized response is keyed by, tried as an attacker would on each event source: the key is
// injective, the identity is complete, ALB headers are trusted on ALB only, domain and stage count, and
// the order of repeated query values is kept. Each test reproduces a finding of issue 11 against the
// real @middy/core and dynalite.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, albEvent, albOidcData, functionUrlEvent, httpApiEvent, restApiEvent, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, headerOf, json, pathOf, setupMiddy, whoIs, type Handler } from './support/middy-harness.ts';

const db = useDynalite();
const setup = (body: Handler, options: DynamoCacheMiddlewareOptions = {}) => setupMiddy(db, body, options);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const bodyOf = (response: { body: string }) => JSON.parse(response.body);

/**
 * Finding 1: the old key was `<prefix>:http:GET <path>|principal:<sha256(principal)>`, the path raw. Each
 * source's victim, and the principal string the old code built for it: the attacker needs only that.
 */
const VICTIMS: Record<HttpSource, { spec: RequestSpec; oldPrincipal: string }[]> = {
  'API Gateway REST (v1)': [
    { spec: { principal: 'alice' }, oldPrincipal: 'claims:https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool|alice' },
    { spec: { authorizer: { principalId: 'alice', integrationLatency: 3 } }, oldPrincipal: 'principal:alice' },
  ],
  'HTTP API (v2)': [{ spec: { principal: 'alice' }, oldPrincipal: 'claims:https://issuer.example.com|alice' }],
  'Function URL': [{ spec: { principal: 'alice' }, oldPrincipal: 'iam:arn:aws:iam::123456789012:user/alice|alice|null' }],
  ALB: [{ spec: { principal: 'alice' }, oldPrincipal: 'oidc:alice' }],
};

/** A public catch-all route on each source: where a crafted path reaches the handler. */
const CATCH_ALL: Record<HttpSource, string> = { 'API Gateway REST (v1)': '/{proxy+}', 'HTTP API (v2)': '$default', 'Function URL': '$default', ALB: '/' };

describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s', (source) => {
  const event = (spec: RequestSpec) => HTTP_SOURCES[source]({ route: CATCH_ALL[source], ...spec });

  it.each(VICTIMS[source].map((victim) => [victim.oldPrincipal.split(':')[0]!, victim] as const))(
    'injective key (finding 1): an anonymous GET of a crafted path never gets a %s user’s response',
    async (_kind, victim) => {
      const { invoke } = await setup(async (e) => json(200, { me: whoIs(e) }));
      const own = await invoke(event({ path: '/me', ...victim.spec }));
      expect(bodyOf(own).me).toBe('alice');
      const attack = await invoke(event({ path: `/me|principal:${sha256(victim.oldPrincipal)}` }));
      expect(bodyOf(attack).me).toBe('anonymous');
      expect(header(attack, 'X-Cache')).toBe('Miss');
    },
  );

  it('query order (finding 6): repeated values in another order are another request; other names still fold', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { seen: queryAsSeen(e) }));
    const spec = (query: string): RequestSpec => ({ path: '/search', query, ...(source === 'ALB' ? { multiValue: true } : {}) });
    const first = await invoke(event(spec('a=1&a=2')));
    const swapped = await invoke(event(spec('a=2&a=1')));
    expect(bodyOf(swapped).seen).not.toEqual(bodyOf(first).seen);
    expect(header(swapped, 'X-Cache')).toBe('Miss');
    await invoke(event(spec('b=1&a=1&a=2')));
    const reordered = await invoke(event(spec('a=1&b=1&a=2')));
    expect(header(reordered, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(3);
  });

  // Issue 23, item 1 (cache-key-normalisation poisoning): `/%78` was keyed as `/x`, so a handler that does
  // not decode (or routes `/%78` to a 404) filled the entry every `/x` caller read.
  it.each([
    ['per-identity routes', {}],
    ['shared routes', { response: { ttlSeconds: 60, shared: true } }],
  ] as const)('one view of the path (%s): two requests share a response only when the handler receives the same path', async (_name, options) => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { path: pathOf(e) }), options);
    const variants = ['/x', '/x/', '/X', '//x', '/x%2F', '/%78', '/x;a', '/%7e', '/~', '/%7E', '/caf%c3%a9', '/caf%C3%A9'];
    for (const path of variants) {
      const answer = await invoke(event({ path }));
      expect([path, bodyOf(answer).path, header(answer, 'X-Cache')]).toEqual([path, path, 'Miss']);
    }
    for (const path of variants) {
      const again = await invoke(event({ path }));
      expect([path, bodyOf(again).path, header(again, 'X-Cache')]).toEqual([path, path, 'Hit']);
    }
    expect(handlerSpy).toHaveBeenCalledTimes(variants.length);
  });
});

describe('the query as the handler receives it: raw where the handler gets it raw, so two spellings never share a key', () => {
  it('ALB (parameters passed raw): ?q=%25E0 and ?q=%E0 are two requests', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { q: e.queryStringParameters?.q }), { response: { ttlSeconds: 60, shared: true } });
    const first = await invoke({ ...albEvent({ path: '/search' }), queryStringParameters: { q: '%25E0' } });
    expect(bodyOf(first).q).toBe('%25E0');
    const second = await invoke({ ...albEvent({ path: '/search' }), queryStringParameters: { q: '%E0' } });
    expect(bodyOf(second).q, `handler runs: ${handlerSpy.mock.calls.length}`).toBe('%E0');
  });

  it.each([
    ['HTTP API (v2)', httpApiEvent],
    ['Function URL', functionUrlEvent],
  ] as const)('%s: a malformed escape and the U+FFFD URLSearchParams turns it into are two requests, and so are ?q=%%78 and ?q=x', async (_source, build) => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { raw: e.rawQueryString }), { response: { ttlSeconds: 60, shared: true } });
    const first = await invoke(build({ path: '/search', route: '$default', query: 'q=%EF%BF%BD' }));
    expect(bodyOf(first).raw).toBe('q=%EF%BF%BD');
    const second = await invoke(build({ path: '/search', route: '$default', query: 'q=%E0' }));
    expect(bodyOf(second).raw, `handler runs: ${handlerSpy.mock.calls.length}`).toBe('q=%E0');
    // The handler gets rawQueryString: equivalent spellings are two requests to it, as /%78 and /x are.
    for (const query of ['q=x', 'q=%78', 'q=%C3%A9', 'q=%c3%a9', 'q=é', 'q', 'q=']) {
      const answer = await invoke(build({ path: '/search', route: '$default', query }));
      expect([query, bodyOf(answer).raw, header(answer, 'X-Cache')]).toEqual([query, query, 'Miss']);
    }
    // Only the order of names is not significant (a stable sort): the values of one name keep theirs.
    await invoke(build({ path: '/search', route: '$default', query: 'b=1&a=%78' }));
    expect(header(await invoke(build({ path: '/search', route: '$default', query: 'a=%78&b=1' })), 'X-Cache')).toBe('Hit');
  });

  it('ALB: ?q=%78 and ?q=x are two requests (the handler gets them undecoded); REST: the handler gets them decoded, so they are one', async () => {
    const alb = await setup(async (e) => json(200, { q: e.queryStringParameters?.q }), { response: { ttlSeconds: 60, shared: true } });
    await alb.invoke({ ...albEvent({ path: '/search' }), queryStringParameters: { q: 'x' } });
    const encoded = await alb.invoke({ ...albEvent({ path: '/search' }), queryStringParameters: { q: '%78' } });
    expect([bodyOf(encoded).q, header(encoded, 'X-Cache')]).toEqual(['%78', 'Miss']);
    const rest = await setup(async (e) => json(200, { q: e.queryStringParameters?.q }), { response: { ttlSeconds: 60, shared: true } });
    await rest.invoke(restApiEvent({ path: '/search', route: '/search', query: 'q=x' }));
    const decoded = await rest.invoke(restApiEvent({ path: '/search', route: '/search', query: 'q=%78' }));
    expect([bodyOf(decoded).q, header(decoded, 'X-Cache')]).toEqual(['x', 'Hit']);
  });
});

/** The query as each source hands it to the handler, values of one name in order. */
function queryAsSeen(e: any): unknown {
  return e.rawQueryString ?? e.multiValueQueryStringParameters ?? e.queryStringParameters;
}

describe('ALB mutual TLS (an outside review): the client certificate is part of the identity', () => {
  const certEvent = (subject: string, serial: string, headers: Record<string, string> = {}) =>
    albEvent({
      path: '/account',
      headers: {
        'x-amzn-mtls-clientcert-subject': `CN=${subject}`,
        'x-amzn-mtls-clientcert-issuer': 'CN=Example CA',
        'x-amzn-mtls-clientcert-serial-number': serial,
        'x-amzn-mtls-clientcert-validity': 'NotBefore=2026-01-01T00:00:00Z;NotAfter=2027-01-01T00:00:00Z',
        ...headers,
      },
    });

  it('two certificates never share a response (verify mode), and one certificate does', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { account: headerOf(e, 'x-amzn-mtls-clientcert-subject') }));
    expect(bodyOf(await invoke(certEvent('alice', '0A'))).account).toBe('CN=alice');
    expect(bodyOf(await invoke(certEvent('bob', '0B'))).account).toBe('CN=bob');
    expect(header(await invoke(certEvent('alice', '0A')), 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('passthrough mode: the whole certificate field counts', async () => {
    const { invoke } = await setup(async (e) => json(200, { cert: headerOf(e, 'x-amzn-mtls-clientcert') }));
    const passthrough = (cert: string) => albEvent({ path: '/account', headers: { 'x-amzn-mtls-clientcert': cert } });
    await invoke(passthrough('-----BEGIN%20CERTIFICATE-----%0Aalice'));
    expect(bodyOf(await invoke(passthrough('-----BEGIN%20CERTIFICATE-----%0Abob'))).cert).toContain('bob');
  });
});

describe('the whole identity (finding 2): every source present, combined', () => {
  it('REST, Lambda authorizer: a constant principalId with the user in its context (the AWS example) keeps users apart', async () => {
    const { invoke } = await setup(async (e) => json(200, { user: e.requestContext.authorizer.userId }));
    const authorizer = (userId: string) => ({ principalId: 'user', userId, integrationLatency: 40 });
    await invoke(restApiEvent({ path: '/me', route: '/me', authorizer: authorizer('alice') }));
    const bob = await invoke(restApiEvent({ path: '/me', route: '/me', authorizer: authorizer('bob') }));
    expect(bodyOf(bob).user).toBe('bob');
    const aliceAgain = await invoke(restApiEvent({ path: '/me', route: '/me', authorizer: { ...authorizer('alice'), integrationLatency: 7 } }));
    expect(header(aliceAgain, 'X-Cache')).toBe('Hit');
  });

  it('REST, Cognito: one sub signed in through two app clients gets each client’s response', async () => {
    const { invoke } = await setup(async (e) => json(200, { client: e.requestContext.authorizer.claims.client_id }));
    const claims = (client: string) => ({ claims: { sub: 'alice', iss: 'https://cognito-idp.us-east-1.amazonaws.com/pool', client_id: client, token_use: 'access', exp: String(Date.now()) } });
    await invoke(restApiEvent({ path: '/me', route: '/me', authorizer: claims('first-party') }));
    const third = await invoke(restApiEvent({ path: '/me', route: '/me', authorizer: claims('third-party') }));
    expect(bodyOf(third).client).toBe('third-party');
  });

  it('HTTP API, Lambda authorizer whose context holds no identity: two bearer tokens never share', async () => {
    const { invoke } = await setup(async (e) => json(200, { token: headerOf(e, 'authorization') }));
    const spec = (token: string): RequestSpec => ({ path: '/me', route: '/me', authorizer: { lambda: { scope: 'user' } }, headers: { authorization: `Bearer ${token}` } });
    await invoke(httpApiEvent(spec('token-a')));
    const b = await invoke(httpApiEvent(spec('token-b')));
    expect(bodyOf(b).token).toBe('Bearer token-b');
  });

  it('HTTP API, JWT: one sub through two OAuth clients with other scopes never shares (no first-party response for a third party)', async () => {
    const { invoke } = await setup(async (e) => json(200, { client: e.requestContext.authorizer.jwt.claims.client_id }));
    const jwt = (client: string, scopes: string[]) => ({ jwt: { claims: { iss: 'https://issuer.example.com', sub: 'alice', client_id: client, scope: scopes.join(' ') }, scopes } });
    await invoke(httpApiEvent({ path: '/me', route: '/me', authorizer: jwt('first-party', ['profile', 'admin']) }));
    const third = await invoke(httpApiEvent({ path: '/me', route: '/me', authorizer: jwt('third-party', ['profile']) }));
    expect(bodyOf(third).client).toBe('third-party');
  });

  it('Function URL, IAM: one caller (a backend-for-frontend role) with two users’ session cookies never shares', async () => {
    const { invoke } = await setup(async (e) => json(200, { session: headerOf(e, 'cookie') }));
    await invoke(functionUrlEvent({ path: '/me', principal: 'bff-role', headers: { cookie: 'session=alice' } }));
    const bob = await invoke(functionUrlEvent({ path: '/me', principal: 'bff-role', headers: { cookie: 'session=bob' } }));
    expect(bodyOf(bob).session).toBe('session=bob');
  });

  it('ALB, OIDC: one subject from two identity providers never shares', async () => {
    const { invoke } = await setup(async (e) => json(200, { data: e.headers['x-amzn-oidc-data'] }));
    const from = (issuer: string) => albEvent({ path: '/me', headers: { 'x-amzn-oidc-identity': 'alice', 'x-amzn-oidc-data': albOidcData(issuer, 'alice') } });
    await invoke(from('https://idp-a.example.com'));
    const other = await invoke(from('https://idp-b.example.com'));
    expect(header(other, 'X-Cache')).toBe('Miss');
    const again = await invoke(from('https://idp-a.example.com'));
    expect(header(again, 'X-Cache')).toBe('Hit');
  });
});

describe('ALB OIDC headers outside ALB (finding 3): a client-sent x-amzn-oidc-identity is not an identity', () => {
  it.each(['API Gateway REST (v1)', 'HTTP API (v2)', 'Function URL'] as const)('%s: it neither overrides Authorization nor joins two users', async (source) => {
    const { invoke } = await setup(async (e) => json(200, { token: headerOf(e, 'authorization') }));
    const spec = (token: string): RequestSpec => ({ path: '/me', route: '/me', headers: { 'x-amzn-oidc-identity': 'forged', authorization: `Bearer ${token}` } });
    await invoke(HTTP_SOURCES[source](spec('token-a')));
    const b = await invoke(HTTP_SOURCES[source](spec('token-b')));
    expect(bodyOf(b).token).toBe('Bearer token-b');
  });
});

describe('domain and stage in the key (finding 4)', () => {
  const byHost = async (events: [unknown, unknown]) => {
    const { invoke } = await setup(async (e) => json(200, { link: `https://${headerOf(e, 'host')}/next` }));
    const first = await invoke(events[0]);
    const second = await invoke(events[1]);
    expect(bodyOf(second).link).not.toBe(bodyOf(first).link);
    expect(header(second, 'X-Cache')).toBe('Miss');
  };

  it('ALB: a response built for Host: evil.example is never served to app.example.com', async () => {
    await byHost([albEvent({ path: '/page', domain: 'evil.example' }), albEvent({ path: '/page', domain: 'app.example.com' })]);
  });

  it('HTTP API: two custom domains never share responses', async () => {
    await byHost([httpApiEvent({ path: '/page', domain: 'api.brand-a.example' }), httpApiEvent({ path: '/page', domain: 'api.brand-b.example' })]);
  });

  it('Function URL: the URLs of two aliases never share responses', async () => {
    await byHost([functionUrlEvent({ path: '/page', domain: 'aaaaaaaa.lambda-url.us-east-1.on.aws' }), functionUrlEvent({ path: '/page', domain: 'bbbbbbbb.lambda-url.us-east-1.on.aws' })]);
  });

  it('REST: a dev stage response is never served to prod', async () => {
    const { invoke } = await setup(async (e) => json(200, { stage: e.requestContext.stage }));
    await invoke(restApiEvent({ path: '/config', route: '/config', stage: 'dev' }));
    const prod = await invoke(restApiEvent({ path: '/config', route: '/config', stage: 'prod' }));
    expect(bodyOf(prod).stage).toBe('prod');
  });

  it('HTTP API: named stages never share responses', async () => {
    const { invoke } = await setup(async (e) => json(200, { stage: e.requestContext.stage }));
    await invoke(httpApiEvent({ path: '/config', route: '/config', stage: 'dev', domain: 'api.example.com' }));
    const prod = await invoke(httpApiEvent({ path: '/config', route: '/config', stage: 'prod', domain: 'api.example.com' }));
    expect(bodyOf(prod).stage).toBe('prod');
  });

  it('keyByDomain and keyByStage: false share across them, when the handler does not depend on either', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { same: true }), { response: { keyByDomain: false, keyByStage: false } });
    await invoke(httpApiEvent({ path: '/static', domain: 'a.example.com', stage: 'dev' }));
    const other = await invoke(httpApiEvent({ path: '/static', domain: 'b.example.com', stage: 'prod' }));
    expect(header(other, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });
});
