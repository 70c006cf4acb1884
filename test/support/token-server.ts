import type { IncomingMessage, ServerResponse } from 'node:http';
import { LocalUpstream, type LocalUpstreamOptions } from './local-upstream.ts';

/** Settings of a {@link TokenServer}: above `ratePerSecond` it answers 429. */
export interface TokenServerOptions extends LocalUpstreamOptions {
  /** `expires_in` of issued tokens, or `null` to leave it out. Default `3600`. */
  expiresInSeconds?: number | null;
  /** Registered clients: id to secret. Default `{ 'demo-client': 'demo-secret' }`. */
  clients?: Record<string, string>;
}

/** A token the server issued. */
export interface IssuedToken {
  readonly accessToken: string;
  /** When the server issued it (epoch ms), and for how long it is valid. */
  readonly issuedAtMs: number;
  readonly expiresInSeconds: number | null;
  readonly scope: string | undefined;
}

/** A request the server received: what the client sent. */
export interface ReceivedTokenRequest {
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly form: URLSearchParams;
}

/** A forced answer: status and JSON body (default `{ "error": "temporarily_unavailable" }`). */
export interface TokenFault {
  readonly status: number;
  readonly body?: Record<string, unknown>;
}

/**
 * A local OAuth 2.0 token endpoint on 127.0.0.1 for the client credentials grant (RFC 6749 section 4.4): it
 * checks the form body and the HTTP Basic client authentication (section 2.3.1) and answers tokens or the
 * RFC's error responses. Like Cognito or any rate-limited upstream, it answers 429 above `ratePerSecond`;
 * tests can also force the next answers or an outage.
 */
export class TokenServer extends LocalUpstream<TokenFault> {
  /** Requests answered with a token, throttled (429), and failed otherwise. */
  readonly counts = { ok: 0, throttled: 0, failed: 0 };
  /** Every token issued, in order. */
  readonly issued: IssuedToken[] = [];
  /** Every request received, in order. */
  readonly requests: ReceivedTokenRequest[] = [];
  readonly #clients: Record<string, string>;
  #expiresInSeconds: number | null;

  private constructor(options: TokenServerOptions) {
    super(options);
    this.#expiresInSeconds = options.expiresInSeconds === undefined ? 3600 : options.expiresInSeconds;
    this.#clients = options.clients ?? { 'demo-client': 'demo-secret' };
  }

  /** Starts a server on a random 127.0.0.1 port. */
  static start(options: TokenServerOptions = {}): Promise<TokenServer> {
    return new TokenServer(options).listen();
  }

  /** The token endpoint's URL. */
  get url(): string {
    return `${this.origin}/oauth2/token`;
  }

  /** Requests received so far (answered or not). */
  get calls(): number {
    return this.counts.ok + this.counts.throttled + this.counts.failed;
  }

  /** Requests answered 429 because of the rate limit. */
  get throttled(): number {
    return this.counts.throttled;
  }

  /** Sets `expires_in` of the next tokens (`null`: left out). */
  setExpiresIn(seconds: number | null): void {
    this.#expiresInSeconds = seconds;
  }

  /** Resets the counters, tokens, requests, faults and rate limit, so each scenario starts from the same state. */
  reset(): void {
    this.issued.length = 0;
    this.requests.length = 0;
    this.counts.ok = 0;
    this.counts.throttled = 0;
    this.counts.failed = 0;
    this.resetFaults();
  }

  protected answer(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const form = new URLSearchParams(body.toString());
    this.requests.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], form });
    const json = (status: number, payload: object, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(payload));
    };
    const refuse = (status: number, payload: object, headers?: Record<string, string>) => {
      this.counts.failed += 1;
      json(status, payload, headers);
    };
    const fault = this.takeFault();
    if (fault === 'throttled') {
      this.counts.throttled += 1;
      return json(429, { error: 'slow_down', error_description: 'Rate exceeded' }, { 'retry-after': '1' });
    }
    if (fault !== undefined) return refuse(fault.status, fault.body ?? { error: 'temporarily_unavailable' });
    if (req.method !== 'POST') return refuse(405, { error: 'invalid_request', error_description: 'POST only' });
    if (req.headers['content-type']?.split(';')[0]?.trim() !== 'application/x-www-form-urlencoded') {
      return refuse(400, { error: 'invalid_request', error_description: 'the body must be application/x-www-form-urlencoded' });
    }
    if (form.get('grant_type') !== 'client_credentials') return refuse(400, { error: 'unsupported_grant_type' });
    const client = basicCredentials(req.headers.authorization);
    if (client === undefined || this.#clients[client.id] !== client.secret) {
      return refuse(401, { error: 'invalid_client', error_description: 'Client authentication failed' }, { 'www-authenticate': 'Basic realm="token"' });
    }
    this.counts.ok += 1;
    const scope = form.get('scope') ?? undefined;
    const token: IssuedToken = { accessToken: `token-${this.issued.length + 1}`, issuedAtMs: Date.now(), expiresInSeconds: this.#expiresInSeconds, scope };
    this.issued.push(token);
    json(200, {
      access_token: token.accessToken,
      token_type: 'Bearer',
      ...(token.expiresInSeconds === null ? {} : { expires_in: token.expiresInSeconds }),
      ...(scope === undefined ? {} : { scope }),
    });
  }
}

/** The client id and secret of an HTTP Basic header, form-decoded as RFC 6749 section 2.3.1 requires. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const formDecode = (value: string) => new URLSearchParams(`v=${value}`).get('v')!;
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

/** An error carrying the upstream's HTTP status, as a client library would throw it. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly status: number;

  constructor(status: number) {
    super(`token endpoint answered ${status}`);
    this.status = status;
  }
}

/**
 * `get_token_from_auth_server()`, as teams write it by hand: one client credentials request to the token
 * endpoint; throws `UpstreamError` on anything but a token (a 429 included).
 */
export async function fetchToken(url: string, clientId = 'demo-client', clientSecret = 'demo-secret'): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new UpstreamError(response.status);
  }
  const body = (await response.json()) as { access_token: string };
  return body.access_token;
}
