import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { MAX_EXPIRES_IN_SECONDS, clientCredentialsToken, type ClientCredentialsTokenOptions } from '../src/oauth/client-credentials-token.ts';
import { TokenEndpointError } from '../src/oauth/errors.ts';
import { RECHECK_SPREAD } from '../src/storage/memory-tier.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { localClientConfig } from './support/dynalite.ts';
import { expectPollingEndsAtAbort, useDynalite } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';
import { TokenServer } from './support/token-server.ts';

const db = useDynalite();
const CLIENT_ID = 'backend client:1';
const CLIENT_SECRET = 'p@ss:w rd+/€%-the-secret';
const encryption = { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' };
let server: TokenServer;

beforeAll(async () => {
  server = await TokenServer.start({ clients: { [CLIENT_ID]: CLIENT_SECRET, 'demo-client': 'demo-secret' } });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  server.reset();
  server.setExpiresIn(3600);
});

/** `n` execution environments: a cache each on one table, and a token provider each. */
async function fleet(n: number, options: Partial<ClientCredentialsTokenOptions> = {}, cacheOptions: DynamoCacheOptions = {}) {
  const tableName = await db.newTable();
  return Promise.all(
    Array.from({ length: n }, async () => {
      const { cache, logger } = await db.newCache({ tableName, encryption, ...cacheOptions });
      const token = clientCredentialsToken({ cache, tokenUrl: server.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...options });
      return { cache, logger, token };
    }),
  );
}

/** The server's expiry of a token it issued (epoch ms). */
const expiryOf = (accessToken: string) => {
  const issued = server.issued.find((t) => t.accessToken === accessToken)!;
  return issued.issuedAtMs + issued.expiresInSeconds! * 1000;
};

describe('clientCredentialsToken', () => {
  it('requests a token as RFC 6749 section 4.4 says: form body, HTTP Basic with form-encoded id and secret, scope', async () => {
    const [env] = await fleet(1, { scope: ['orders/read', 'orders/write'], parameters: { audience: 'https://api.example.com' } });
    expect(await env!.token()).toBe('token-1');
    const [request] = server.requests;
    expect(request!.contentType).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(request!.form)).toEqual({ grant_type: 'client_credentials', scope: 'orders/read orders/write', audience: 'https://api.example.com' });
    // Section 2.3.1: each of id and secret is form-encoded (space as +, the rest as %XX) before Base64.
    expect(Buffer.from(request!.authorization!.slice('Basic '.length), 'base64').toString()).toBe('backend+client%3A1:p%40ss%3Aw+rd%2B%2F%E2%82%AC%25-the-secret');
    expect(server.issued[0]!.scope).toBe('orders/read orders/write');
  });

  it('returns the same token across 20 environments until expires_in - skew, then one of them refreshes it, once', async () => {
    server.setExpiresIn(3);
    const envs = await fleet(20, { skewSeconds: 1 });
    const answers: { token: string; atMs: number }[] = [];
    const started = Date.now();
    await Promise.all(
      envs.map(async ({ token }) => {
        while (Date.now() - started < 3500) {
          const accessToken = await token();
          answers.push({ token: accessToken, atMs: Date.now() });
          await sleep(25);
        }
      }),
    );
    // Fresh for 2 s (3 - 1), refreshed once, by one environment, at about 2 s: two tokens in 3.5 s. Without a
    // stale window the first environment to recheck refreshes ahead of the end, in its last tenth (RECHECK_SPREAD).
    expect(server.issued.map((t) => t.accessToken)).toEqual(['token-1', 'token-2']);
    expect(server.calls).toBe(2);
    const refreshedAfter = server.issued[1]!.issuedAtMs - server.issued[0]!.issuedAtMs;
    expect(refreshedAfter).toBeGreaterThanOrEqual(2000 * (1 - RECHECK_SPREAD));
    expect(refreshedAfter).toBeLessThan(3000);
    expect(answers.filter((a) => a.atMs - started < 2000 * (1 - RECHECK_SPREAD) - 50).every((a) => a.token === 'token-1')).toBe(true);
    for (const answer of answers) expect(answer.atMs).toBeLessThan(expiryOf(answer.token));
  });

  it('keeps answering the current token while the endpoint fails (429, then 503), never after its real expiry', async () => {
    server.setExpiresIn(2);
    const [env] = await fleet(1, { skewSeconds: 1 }, { memory: false });
    expect(await env!.token()).toBe('token-1');
    const expiry = expiryOf('token-1');
    await sleep(1200); // past expires_in - skew: refresh due
    server.setOutage({ status: 429, body: { error: 'slow_down' } });
    expect(await env!.token()).toBe('token-1');
    server.setOutage({ status: 503 });
    expect(await env!.token()).toBe('token-1');
    expect(Date.now()).toBeLessThan(expiry);
    await sleep(expiry - Date.now() + 50);
    const error = await env!.token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect(error).toMatchObject({ status: 503, error: 'temporarily_unavailable' });
    expect(env!.logger.warnings.some((w) => /fetch failed; answering with the stale value/.test(w.message))).toBe(true);
  });

  it('never answers a token after its expiry, though the cache item lives on to the next whole second', async () => {
    server.setExpiresIn(1); // skew 60 s, capped at 0.5 s; the item's storage expiry is rounded up to whole seconds
    const [env] = await fleet(1, {}, { memory: false });
    expect(await env!.token()).toBe('token-1');
    const expiry = expiryOf('token-1');
    server.setOutage({ status: 503 });
    const answers: { token: string | undefined; atMs: number }[] = [];
    while (Date.now() < expiry + 1200) {
      const token = await env!.token().catch(() => undefined);
      answers.push({ token, atMs: Date.now() });
      await sleep(20);
    }
    expect(answers.some((a) => a.token === 'token-1')).toBe(true); // the stale token stood in while valid
    for (const answer of answers) if (answer.token !== undefined) expect(answer.atMs).toBeLessThan(expiry);
    expect(answers.at(-1)!.token).toBeUndefined();
  });

  it('a timeout of the token request counts as a failure, reported as one', async () => {
    const slow = await TokenServer.start({ latencyMs: 500 });
    try {
      const { cache } = await db.newCache({ encryption });
      const token = clientCredentialsToken({ cache, tokenUrl: slow.url, clientId: 'demo-client', clientSecret: 'demo-secret', timeoutMs: 100 });
      const error = await token().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenEndpointError);
      expect((error as Error).message).toBe('token endpoint did not answer within 100 ms');
      expect(error).toMatchObject({ status: undefined, tokenUrl: slow.url });
    } finally {
      await slow.close();
    }
  });

  it("reports the endpoint's error and error_description clearly, never the secret", async () => {
    const [env] = await fleet(1, { clientSecret: 'wrong-secret' });
    const error = (await env!.token().catch((e: unknown) => e)) as TokenEndpointError;
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect(error.message).toBe('token endpoint answered 401 invalid_client: Client authentication failed');
    expect(error).toMatchObject({ status: 401, error: 'invalid_client', errorDescription: 'Client authentication failed', tokenUrl: server.url });
    // A server that echoes what it was sent: the secret is masked in what reaches the caller.
    server.injectNext(1, { status: 400, body: { error: 'invalid_request', error_description: `bad secret ${CLIENT_SECRET}` } });
    const [echoed] = await fleet(1);
    const echo = (await echoed!.token().catch((e: unknown) => e)) as TokenEndpointError;
    expect(echo.errorDescription).toBe('bad secret [redacted]');
    // ...and in the forms it went on the wire: form-encoded, and inside the Basic credentials.
    const formSecret = new URLSearchParams([['', CLIENT_SECRET]]).toString().slice(1);
    const basic = Buffer.from(`${new URLSearchParams([['', CLIENT_ID]]).toString().slice(1)}:${formSecret}`).toString('base64');
    const uriSecret = encodeURIComponent(CLIENT_SECRET);
    server.injectNext(1, { status: 400, body: { error: 'invalid_request', error_description: `bad client secret ${formSecret} (${uriSecret})` } });
    const formEcho = (await echoed!.token().catch((e: unknown) => e)) as TokenEndpointError;
    expect(formEcho.errorDescription).toBe('bad client secret [redacted] ([redacted])');
    server.injectNext(1, { status: 401, body: { error: 'invalid_client', error_description: `rejected Authorization: Basic ${basic}` } });
    const basicEcho = (await echoed!.token().catch((e: unknown) => e)) as TokenEndpointError;
    expect(basicEcho.errorDescription).toBe('rejected Authorization: Basic [redacted]');
    // ...and re-spelt by the endpoint: lower-case escapes, Basic credentials as base64url without padding.
    const lowerSecret = formSecret.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
    const basicUrl = Buffer.from(basic, 'base64').toString('base64url');
    server.injectNext(1, { status: 400, body: { error: 'invalid_request', error_description: `secret ${lowerSecret} in ${basicUrl}` } });
    const respelt = (await echoed!.token().catch((e: unknown) => e)) as TokenEndpointError;
    expect(respelt.errorDescription).toBe('secret [redacted] in [redacted]');
    for (const e of [error, echo, formEcho, basicEcho, respelt]) {
      const text = `${e.message} ${JSON.stringify(e)} ${e.stack}`;
      for (const form of [CLIENT_SECRET, formSecret, uriSecret, basic, lowerSecret, basicUrl, 'wrong-secret']) expect(text).not.toContain(form);
    }
  });

  it('reports an answer that is not a token, or a token that expired on its way', async () => {
    server.setExpiresIn(-5);
    const [env] = await fleet(1);
    await expect(env!.token()).rejects.toThrow(/invalid expires_in -5/);
    server.injectNext(1, { status: 200, body: { token_type: 'Bearer' } });
    await expect(env!.token()).rejects.toThrow('token endpoint answered 200 without an access_token');
    server.injectNext(1, { status: 200, body: { access_token: 'mac-token', token_type: 'mac', expires_in: '60' } });
    await expect(env!.token()).rejects.toThrow('token endpoint answered a mac token, not a Bearer token');
    server.injectNext(1, { status: 502, body: {} });
    await expect(env!.token()).rejects.toMatchObject({ message: 'token endpoint answered 502 Bad Gateway', status: 502 });
    const slow = await TokenServer.start({ latencyMs: 1200, expiresInSeconds: 1 });
    try {
      const { cache } = await db.newCache({ encryption });
      const token = clientCredentialsToken({ cache, tokenUrl: slow.url, clientId: 'demo-client', clientSecret: 'demo-secret' });
      await expect(token()).rejects.toThrow(/token that expired before it arrived/);
    } finally {
      await slow.close();
    }
  });

  it.each<[string, unknown]>([
    ['true', true],
    ['[3600]', [3600]],
    ['"0x10"', '0x10'],
    ['1e308', 1e308],
    ['0', 0],
    ['60.5', 60.5],
    ['"1e3"', '1e3'],
    ['" 60"', ' 60'],
    ['"60.0"', '60.0'],
    ['""', ''],
    ['null', null],
    ['{}', {}],
    ['one past the cap', MAX_EXPIRES_IN_SECONDS + 1],
  ])('an expires_in of %s is a TokenEndpointError, and the refresh lease is given back at once', async (_name, expiresIn) => {
    const [first, next] = await fleet(2);
    server.injectNext(1, { status: 200, body: { access_token: 'bad-lifetime', token_type: 'Bearer', expires_in: expiresIn } });
    const error = await first!.token().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect((error as Error).message).toMatch(/^token endpoint answered an invalid expires_in .+: it must be a whole number of seconds from 1 to 31536000$/);
    expect(error).toMatchObject({ status: 200 });
    // The next environment does not wait for a lease the failed one kept: it asks the endpoint at once.
    expect(await next!.token()).toBe('token-1');
    expect(next!.cache.stats()).toMatchObject({ leaseWaits: 0, leaseWins: 1 });
  });

  it.each<[string, unknown]>([
    ['a JSON number', 3600],
    ['a string of decimal digits (as Azure AD v1 sends it)', '3599'],
    ['the cap', MAX_EXPIRES_IN_SECONDS],
  ])('an expires_in given as %s is the lifetime in seconds: the token is used, and cached', async (_name, expiresIn) => {
    const [env] = await fleet(1);
    server.injectNext(1, { status: 200, body: { access_token: 'long-lived', token_type: 'Bearer', expires_in: expiresIn } });
    expect([await env!.token(), await env!.token()]).toEqual(['long-lived', 'long-lived']);
    expect(server.calls).toBe(1);
  });

  it('refuses a tokenUrl holding credentials, and never repeats them', async () => {
    const { cache, logger } = await db.newCache({ encryption });
    const options = { cache, clientId: 'id', clientSecret: 'secret' };
    for (const tokenUrl of [
      'https://user:url-password-123@auth.example.com/oauth2/token',
      'https://user:url-password-123@auth.example.com:99999/token',
      'https://:url-password-123@auth.example.com/token',
      // RFC 6749 2.3.1: nor in the query (an outside review found this one taken, logged and carried in errors)
      'https://auth.example.com/oauth2/token?client_id=id&client_secret=url-password-123',
      'https://auth.example.com/oauth2/token?Client_Assertion=url-password-123',
    ]) {
      const error = (() => {
        try {
          clientCredentialsToken({ ...options, tokenUrl });
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect(error!.message).toMatch(/^tokenUrl must (not hold credentials \((user:password@|its query has "[A-Za-z_]+")\): give them as clientId and clientSecret|be an absolute URL)/);
      expect(`${error!.message} ${JSON.stringify(error)} ${error!.stack} ${String(error!.cause)} ${JSON.stringify(error!.cause)}`).not.toContain('url-password-123');
    }
    expect(JSON.stringify(logger.entries)).not.toContain('url-password-123');
  });

  it('takes the secret from an async function, called only when a token is requested', async () => {
    let reads = 0;
    const clientSecret = async () => {
      reads += 1;
      return CLIENT_SECRET;
    };
    const envs = await fleet(3, { clientSecret });
    expect(reads).toBe(0);
    for (const { token } of envs) expect(await token()).toBe('token-1');
    expect(reads).toBe(1);
  });

  it('caps the skew at half the lifetime, and assumes defaultExpiresInSeconds when the endpoint sends no expires_in', async () => {
    server.setExpiresIn(1); // default skew 60 s > 1 s: cached for 0.5 s instead of never
    const [env] = await fleet(1, {}, { memory: false });
    expect([await env!.token(), await env!.token()]).toEqual(['token-1', 'token-1']);
    await sleep(1100);
    expect(await env!.token()).toBe('token-2');

    server.setExpiresIn(null);
    const [other] = await fleet(1, { defaultExpiresInSeconds: 120, skewSeconds: 0 });
    expect([await other!.token(), await other!.token()]).toEqual(['token-3', 'token-3']);
  });

  it('warns once at construction when the cache has no encryption, and not with it', async () => {
    const [clear] = await fleet(1, {}, { encryption: undefined });
    expect(clear!.logger.warnings.filter((w) => /stores access tokens in clear/.test(w.message))).toHaveLength(1);
    await clear!.token();
    await clear!.token();
    expect(clear!.logger.warnings.filter((w) => /stores access tokens in clear/.test(w.message))).toHaveLength(1);
    const [encrypted] = await fleet(1);
    expect(encrypted!.logger.warnings).toEqual([]);
  });

  it("a caller's AbortSignal ends the wait, and gives the refresh lease back for the next caller", async () => {
    const slow = await TokenServer.start({ latencyMs: 1000 });
    try {
      // A long lease: a caller that kept it would hold the next one up for 5 s (lease.waitMs).
      const { cache } = await db.newCache({ encryption, lease: { ttlMs: 30_000 } });
      const token = clientCredentialsToken({ cache, tokenUrl: slow.url, clientId: 'demo-client', clientSecret: 'demo-secret' });
      const started = performance.now();
      await expect(token({ signal: AbortSignal.timeout(50) })).rejects.toMatchObject({ name: 'AbortError' });
      expect(performance.now() - started).toBeLessThan(800); // well before the endpoint's answer
      // The lease was given back: the next caller fetches at once (1 s) instead of waiting 5 s for it.
      const next = performance.now();
      expect(await token()).toMatch(/^token-\d$/);
      expect(performance.now() - next).toBeLessThan(4000);
    } finally {
      await slow.close();
    }
  });

  it("after the caller's signal fires, the cache stops too: no more DynamoDB polling for another environment's refresh", async () => {
    const slow = await TokenServer.start({ latencyMs: 3000 });
    const proxy = await FaultProxy.start(db.endpoint); // counts the waiter's DynamoDB requests
    try {
      const tableName = await db.newTable();
      const options = { tokenUrl: slow.url, clientId: 'demo-client', clientSecret: 'demo-secret' };
      const holder = clientCredentialsToken({ cache: (await db.newCache({ tableName, encryption })).cache, ...options });
      const waiter = clientCredentialsToken({ cache: (await db.newCache({ tableName, encryption, endpoint: proxy.endpoint })).cache, ...options });
      await expectPollingEndsAtAbort(proxy, () => holder(), (signal) => waiter({ signal })); // the holder keeps the lease for 3 s
    } finally {
      await proxy.close();
      await slow.close();
    }
  });

  it('invalidate after 500 concurrent 401s makes one token request: the whole fleet moves to the new token', async () => {
    // 50 environments and one dynalite share this process: a refresh can take seconds here, longer than the default
    // lease, after which a waiter would take it over (liveness) and fetch a second token. That is this machine.
    const envs = await fleet(50, {}, { lease: { ttlMs: 30_000, waitMs: 20_000 } });
    await Promise.all(envs.map(({ token }) => token())); // every environment holds token-1, in memory too
    expect(server.calls).toBe(1);
    const revoked = new Set(['token-1']); // the resource server stops accepting it
    const callApi = async (provider: (typeof envs)[number]['token']): Promise<string> => {
      for (let attempt = 1; attempt <= 3; attempt++) {
        const accessToken = await provider();
        if (!revoked.has(accessToken)) return accessToken;
        await provider.invalidate(accessToken); // the API answered 401
      }
      throw new Error('answered a rejected token again');
    };
    const answers = await Promise.all(envs.flatMap(({ token }) => Array.from({ length: 10 }, () => callApi(token))));
    expect(answers).toEqual(Array(500).fill('token-2'));
    expect(server.calls).toBe(2); // token-1, and one request after the 500 401s
    // An environment whose 401 comes after the new token is stored leaves it alone.
    await envs[0]!.token.invalidate('token-1');
    expect(await envs[1]!.token()).toBe('token-2');
    expect(server.calls).toBe(2);
  });

  it('a rejected token is never answered again, not even as the stale fallback when the endpoint fails', async () => {
    server.setExpiresIn(6);
    const [env, other] = await fleet(2, { skewSeconds: 3 });
    expect(await env!.token()).toBe('token-1');
    expect(await other!.token()).toBe('token-1');
    await sleep(3100); // past expires_in - skew: token-1 is the stale fallback while a refresh fails
    server.setOutage({ status: 503 });
    expect(await other!.token()).toBe('token-1'); // stale-if-error, before it is rejected
    await env!.token.invalidate('token-1');
    await expect(env!.token()).rejects.toBeInstanceOf(TokenEndpointError);
    // The cache holds it no more: another environment does not answer it either, once its memory rereads the
    // cache. After the failed refresh it answered token-1 from memory, without asking, until the fleet tries the
    // endpoint again (FAILED_REFRESH_RETRY_MS, jittered: at most 2 s); token-1 is still within its real lifetime.
    await sleep(2100);
    await expect(other!.token()).rejects.toBeInstanceOf(TokenEndpointError);
    server.setOutage(undefined);
    expect(await env!.token()).toBe('token-2');
  });

  it('invalidate needs the rejected token', async () => {
    const [env] = await fleet(1);
    await expect(env!.token.invalidate('')).rejects.toThrow(InvalidOptionsError);
    await expect(env!.token.invalidate(undefined as never)).rejects.toThrow(/rejected access token/);
  });

  it('checks its options', async () => {
    const { cache } = await db.newCache({ encryption });
    const base = { cache, tokenUrl: 'https://auth.example.com/oauth2/token', clientId: 'id', clientSecret: 'secret' };
    expect(() => clientCredentialsToken({ ...base, tokenUrl: 'http://auth.example.com/oauth2/token' })).toThrow(/https: \(http: only on a loopback address\)/);
    expect(() => clientCredentialsToken({ ...base, tokenUrl: 'not a url' })).toThrow(InvalidOptionsError);
    expect(() => clientCredentialsToken({ ...base, clientId: '' })).toThrow(/clientId/);
    expect(() => clientCredentialsToken({ ...base, clientSecret: '' })).toThrow(/clientSecret/);
    expect(() => clientCredentialsToken({ ...base, scope: 'a "b"' })).toThrow(/not a valid scope token/);
    expect(() => clientCredentialsToken({ ...base, parameters: { grant_type: 'password' } })).toThrow(/set by clientCredentialsToken itself/);
    expect(() => clientCredentialsToken({ ...base, skewSeconds: -1 })).toThrow(/skewSeconds/);
    expect(() => clientCredentialsToken({ ...base, defaultExpiresInSeconds: MAX_EXPIRES_IN_SECONDS + 1 })).toThrow(/defaultExpiresInSeconds must be at most 31536000/);
    expect(() => clientCredentialsToken({ ...base, cache: {} as DynamoCache })).toThrow(/must be a DynamoCache/);
    expect(() => clientCredentialsToken({ ...base, tokenUrl: 'http://127.0.0.1:8080/token' })).not.toThrow();
    // A misspelled option would otherwise be ignored: a token with the server's default scopes, without a word.
    expect(() => clientCredentialsToken({ ...base, scopes: ['orders/read'] } as never)).toThrow(/Unknown option "scopes" in clientCredentialsToken options; did you mean "scope"\?/);
    expect(() => clientCredentialsToken({ ...base, tokenURL: base.tokenUrl } as never)).toThrow(InvalidOptionsError);
  });

  it('takes a cache from another copy of the package (the CommonJS build) by its brand', async () => {
    const cjs = createRequire(import.meta.url)('../dist/index.cjs') as typeof import('../src/index.ts');
    const cache = new cjs.DynamoCache({ tableName: await db.newTable(), clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger(), encryption });
    expect(cache instanceof DynamoCache).toBe(false); // what an instanceof check refused
    expect(() => clientCredentialsToken({ cache, tokenUrl: 'https://auth.example.com/oauth2/token', clientId: 'id', clientSecret: 'secret' })).not.toThrow();
  });
});
