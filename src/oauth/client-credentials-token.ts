import { createHash } from 'node:crypto';
import { abortError, underSignal } from '../resilience/abort.ts';
import { DynamoCache, type FetchTurn, type GetOrSetOptions, type SetOptions } from '../cache.ts';
import { InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { LEASE_DEFAULTS, nonNegativeNumber, positiveInteger, positiveNumber, resolveLease, type LeaseOptions } from '../options.ts';
import { TokenEndpointError } from './errors.ts';

/** Options of {@link clientCredentialsToken}. */
export interface ClientCredentialsTokenOptions {
  /** The cache that shares the token across the fleet. Tokens are stored encrypted when it has `encryption`. */
  cache: DynamoCache;
  /** The token endpoint (Cognito: `https://<domain>/oauth2/token`). `https:`, or `http:` on a loopback address only. */
  tokenUrl: string;
  /** The client identifier. */
  clientId: string;
  /** The client secret, or a function that resolves it (read from Secrets Manager); called only when a token is requested. */
  clientSecret: string | (() => string | Promise<string>);
  /** Scopes requested (space-separated, or a list). Default: none (the server's default scopes). */
  scope?: string | readonly string[];
  /** Further form parameters of the token request, such as `audience` or `resource` (RFC 8707). Default: none. */
  parameters?: Readonly<Record<string, string>>;
  /**
   * Seconds before its expiry at which a token is refreshed: it is fresh for `expires_in - skewSeconds`
   * (at most half its lifetime), then refreshed by one caller while the others keep using it until it
   * expires. Default `60`.
   */
  skewSeconds?: number;
  /** Lifetime assumed when the endpoint answers no `expires_in`, in seconds (at most `MAX_EXPIRES_IN_SECONDS`). Default `300`. */
  defaultExpiresInSeconds?: number;
  /** Time budget of one token request, in ms. Default `5000`. */
  timeoutMs?: number;
  /** The refresh lease: `false` for none, or options over the cache's. Default: the cache's. */
  lease?: boolean | LeaseOptions;
}

/** Options of one call of a {@link TokenProvider}. */
export interface TokenRequestOptions {
  /** Aborts waiting for the token (the cache, another caller's refresh, the token request). */
  signal?: AbortSignal;
}

/**
 * Resolves a valid Bearer access token: from the cache while one is fresh, else from the token endpoint (one
 * caller across the fleet). Rejects with `TokenEndpointError` when no valid token can be had.
 */
export interface TokenProvider {
  (options?: TokenRequestOptions): Promise<string>;
  /**
   * Drops a token the resource server rejected (it answered 401 with it: revoked, a signing key rotated) so that
   * the next call gets a new one: requested once across the fleet, and only if the cache still holds the
   * rejected token, so that a 401 storm from the whole fleet makes one token request. This provider never answers
   * the rejected token again, not even as a stale fallback; other environments stop at their own 401 (and
   * invalidate), or when their memory tier rereads the cache (`memory.ttlSeconds`). Never rejects for a cache
   * problem (logged): the rejected token is still never answered here.
   * @throws InvalidOptionsError when `rejectedToken` is not a non-empty string.
   */
  invalidate(rejectedToken: string): Promise<void>;
}

/** The defaults of {@link ClientCredentialsTokenOptions}. */
export const CLIENT_CREDENTIALS_DEFAULTS = { skewSeconds: 60, defaultExpiresInSeconds: 300, timeoutMs: 5000 } as const;

/**
 * The longest token lifetime taken from a token endpoint, in seconds (365 days). An `expires_in` beyond it is
 * an error, not a token to keep for years: no server issues client credentials tokens for that long.
 */
export const MAX_EXPIRES_IN_SECONDS = 31_536_000;

/** A token as the cache holds it. `expiresAtMs` is its real expiry, counted from when it was requested. */
interface StoredToken {
  readonly accessToken: string;
  readonly expiresAtMs: number;
}

/** Rejected tokens a provider remembers, so as never to answer them again: the last few are enough, each is refreshed away at once. */
const REMEMBERED_REJECTIONS = 16;
/**
 * Times a call asks the cache again after it answered a rejected token (read before its invalidation ended):
 * a read sent before the invalidation may still refill this environment's memory tier once or twice.
 */
const REJECTED_RETRIES = 3;

/** A scope-token of RFC 6749 section 3.3: printable ASCII without space, `"` or `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);
const RESERVED_PARAMETERS = new Set(['grant_type', 'scope', 'client_id', 'client_secret']);
/** Query parameters that carry a client's credentials (RFC 6749 2.3.1, RFC 7523 2.2): never in `tokenUrl`. */
const CREDENTIAL_PARAMETERS = new Set(['client_secret', 'client_assertion', 'password', 'access_token', 'refresh_token']);

const TOKEN_OPTION_NAMES = ['cache', 'tokenUrl', 'clientId', 'clientSecret', 'scope', 'parameters', 'skewSeconds', 'defaultExpiresInSeconds', 'timeoutMs', 'lease'] satisfies ReadonlyArray<keyof ClientCredentialsTokenOptions>;

/**
 * An access token provider for the OAuth 2.0 client credentials grant (RFC 6749 section 4.4), shared by the
 * whole fleet through the cache: Cognito's `/oauth2/token` or any compliant server.
 *
 * The request is a form-encoded POST (`grant_type=client_credentials`, `scope`) with HTTP Basic client
 * authentication (section 2.3.1: id and secret form-encoded, then Base64). The token is cached for its
 * `expires_in` minus `skewSeconds`, counted from when the request was sent; then one caller refreshes it
 * (the lease) while the others keep using the current token. If the refresh fails (429, 5xx, timeout) the
 * current token is answered while it is still valid, never after its real expiry.
 *
 * Tokens are stored encrypted when the cache has `encryption`; without it, a warning is logged once, here.
 * A token the resource server rejects is dropped with `invalidate` (see {@link TokenProvider}).
 *
 * @example
 * const accessToken = clientCredentialsToken({ cache, tokenUrl: 'https://auth.example.com/oauth2/token', clientId, clientSecret: () => readSecret() });
 * const token = await accessToken();
 * const response = await fetch(api, { headers: { authorization: `Bearer ${token}` } });
 * if (response.status === 401) await accessToken.invalidate(token); // the next accessToken() gets a new one
 * @throws InvalidOptionsError for bad options.
 */
export function clientCredentialsToken(options: ClientCredentialsTokenOptions): TokenProvider {
  const settings = resolveTokenOptions(options);
  const { cache } = settings;
  if (!cache.encrypted) {
    cache.logger.warn('dynamo-cache: clientCredentialsToken stores access tokens in clear in the cache table; configure the cache encryption to store them encrypted', {
      tokenUrl: settings.tokenUrl,
    });
  }
  const key = `oauth2/client-credentials/${createHash('sha256').update(JSON.stringify([settings.tokenUrl, settings.clientId, settings.form])).digest('base64url')}`;
  // Each token is stored with its own lifetime (lifetimeOf); the windows here only bound what a read accepts.
  const policy: GetOrSetOptions = {
    ttlSeconds: 0,
    staleWhileRevalidateSeconds: settings.skewSeconds,
    staleIfErrorSeconds: settings.skewSeconds,
    ...(settings.lease === undefined ? {} : { lease: settings.lease }),
  };

  // Tokens rejected by a resource server (oldest first), and the invalidations in flight, by token: concurrent 401s share one.
  const rejected = new Set<string>();
  const invalidations = new Map<string, Promise<void>>();
  /** A valid token no resource server rejected. */
  const usable = (value: unknown): string | undefined => (isValid(value) && !rejected.has(value.accessToken) ? value.accessToken : undefined);

  const invalidate = async (rejectedToken: string): Promise<void> => {
    if (typeof rejectedToken !== 'string' || rejectedToken === '') throw new InvalidOptionsError('invalidate() needs the rejected access token, a non-empty string');
    rejected.delete(rejectedToken);
    rejected.add(rejectedToken);
    if (rejected.size > REMEMBERED_REJECTIONS) rejected.delete(rejected.values().next().value!);
    let pending = invalidations.get(rejectedToken);
    if (pending === undefined) {
      // Only if the cache still holds the rejected token: once another environment stored a new one, it stays.
      // A cache from an older copy of the package has no invalidate: this provider still never answers the token.
      pending = Promise.resolve(cache.invalidate?.(key, { ifValue: (value) => (value as Partial<StoredToken> | undefined)?.accessToken === rejectedToken }))
        .then(
          () => undefined,
          (error: unknown) => cache.logger.warn('dynamo-cache: rejected access token not invalidated in the cache', { errorMessage: (error as Error)?.message }),
        )
        .finally(() => invalidations.delete(rejectedToken));
      invalidations.set(rejectedToken, pending);
    }
    await pending;
  };

  const storeFetched = async (turn: FetchTurn<StoredToken>, signal: AbortSignal | undefined): Promise<string> => {
    let token: StoredToken;
    try {
      token = await requestToken(settings, signal);
    } catch (error) {
      if (signal?.aborted) {
        await turn.abandon();
        throw error;
      }
      const fallback = await turn.fail(error);
      const stale = usable(fallback?.value);
      if (stale !== undefined) return stale;
      throw error;
    }
    try {
      await turn.fulfil(token, lifetimeOf(token, settings.skewSeconds));
    } catch (error) {
      // The endpoint issued the token: the caller gets it whatever happens to the cache, and the lease is given back.
      cache.logger.warn('dynamo-cache: access token not cached', { errorMessage: (error as Error).message });
      await turn.abandon().catch(() => {});
    }
    return token.accessToken;
  };

  const provide = async (requestOptions: TokenRequestOptions = {}): Promise<string> => {
    const { signal } = requestOptions;
    if (signal?.aborted) throw abortError(signal);
    for (let attempt = 1; ; attempt++) {
      const acquisition = await underSignal(signal, (own) => cache.acquire<StoredToken>(key, own === undefined ? policy : { ...policy, signal: own }), (late) => {
        if (!late.found) return late.abandon();
      });
      if (!acquisition.found) return storeFetched(acquisition, signal);
      const cached = usable(acquisition.value);
      if (cached !== undefined) return cached;
      // A rejected token read before its invalidation ended: end it, and ask again.
      if (attempt <= REJECTED_RETRIES && isValid(acquisition.value)) {
        await invalidate(acquisition.value.accessToken);
        continue;
      }
      // Unreadable, expired within the cache's rounding of its last window, or rejected still: fetch and store, without the lease.
      const token = await requestToken(settings, signal);
      await cache.set(key, token, lifetimeOf(token, settings.skewSeconds));
      return token.accessToken;
    }
  };
  return Object.assign(provide, { invalidate });
}

/**
 * How long a token is cached: fresh until `expiry - skew` (the skew at most half its remaining lifetime), then
 * answered until its expiry while one caller refreshes it, or when the refresh fails.
 */
function lifetimeOf(token: StoredToken, skewSeconds: number): SetOptions {
  const lifetimeMs = Math.max(0, token.expiresAtMs - Date.now());
  const skewMs = Math.min(skewSeconds * 1000, lifetimeMs / 2);
  return { ttlSeconds: (lifetimeMs - skewMs) / 1000, staleWhileRevalidateSeconds: skewMs / 1000, staleIfErrorSeconds: skewMs / 1000 };
}

/** Whether a cached value is a token that has not expired yet. */
function isValid(value: unknown): value is StoredToken {
  const token = value as Partial<StoredToken> | undefined;
  return typeof token?.accessToken === 'string' && typeof token.expiresAtMs === 'number' && token.expiresAtMs > Date.now();
}

/** Options with defaults applied and the request form built. */
interface TokenSettings {
  readonly cache: DynamoCache;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string | (() => string | Promise<string>);
  /** The form parameters besides `grant_type`, in a fixed order. */
  readonly form: readonly [string, string][];
  readonly skewSeconds: number;
  readonly defaultExpiresInSeconds: number;
  readonly timeoutMs: number;
  readonly lease: boolean | LeaseOptions | undefined;
}

function resolveTokenOptions(options: ClientCredentialsTokenOptions): TokenSettings {
  if (options === null || typeof options !== 'object') throw new InvalidOptionsError('clientCredentialsToken options must be an object');
  // A misspelled option (`scopes`) would otherwise be a token with other scopes than meant, without a word.
  assertKnownOptions('clientCredentialsToken options', options, TOKEN_OPTION_NAMES);
  const { cache, tokenUrl, clientId, clientSecret, scope, parameters = {}, lease } = options;
  // By its brand, not instanceof: a cache from another copy of the package (a layer's, a bundle's) is one too.
  if (!DynamoCache.isDynamoCache(cache)) throw new InvalidOptionsError('clientCredentialsToken options.cache must be a DynamoCache');
  // Neither message nor cause repeats the URL: it may hold the credentials refused below.
  let url: URL;
  try {
    url = new URL(tokenUrl);
  } catch {
    throw new InvalidOptionsError('tokenUrl must be an absolute URL (the value given is not one; it is not repeated here, as it may hold credentials)');
  }
  // Credentials in the URL would be logged and carried in every TokenEndpointError; the client's go in clientId and clientSecret.
  if (url.username !== '' || url.password !== '') {
    throw new InvalidOptionsError('tokenUrl must not hold credentials (user:password@): give them as clientId and clientSecret');
  }
  // RFC 6749 2.3.1: client credentials never go in the request URI (a query parameter is logged by every proxy on the way).
  const inQuery = [...url.searchParams.keys()].find((name) => CREDENTIAL_PARAMETERS.has(name.toLowerCase()));
  if (inQuery !== undefined) {
    throw new InvalidOptionsError(`tokenUrl must not hold credentials (its query has ${JSON.stringify(inQuery)}): give them as clientId and clientSecret`);
  }
  // RFC 6749 section 3.2: the token endpoint is reached over TLS; loopback is the one exception (tests, sidecars).
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new InvalidOptionsError('tokenUrl must be https: (http: only on a loopback address)');
  }
  if (typeof clientId !== 'string' || clientId === '') throw new InvalidOptionsError('clientId must be a non-empty string');
  if (!(typeof clientSecret === 'string' && clientSecret !== '') && typeof clientSecret !== 'function') {
    throw new InvalidOptionsError('clientSecret must be a non-empty string or a function that resolves one');
  }
  const scopes = scope === undefined ? [] : typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [...scope];
  for (const s of scopes) if (typeof s !== 'string' || !SCOPE_TOKEN.test(s)) throw new InvalidOptionsError(`scope ${JSON.stringify(s)} is not a valid scope token`);
  if (parameters === null || typeof parameters !== 'object') throw new InvalidOptionsError('parameters must be an object of strings');
  for (const [name, value] of Object.entries(parameters)) {
    if (RESERVED_PARAMETERS.has(name)) throw new InvalidOptionsError(`parameters.${name} is set by clientCredentialsToken itself`);
    if (typeof value !== 'string') throw new InvalidOptionsError(`parameters.${name} must be a string`);
  }
  if (lease !== undefined) resolveLease('lease', lease, LEASE_DEFAULTS);
  const form: [string, string][] = [...(scopes.length === 0 ? [] : [['scope', scopes.join(' ')] as [string, string]]), ...Object.entries(parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))];
  const defaults = CLIENT_CREDENTIALS_DEFAULTS;
  return {
    cache,
    tokenUrl: url.href,
    clientId,
    clientSecret,
    form,
    skewSeconds: nonNegativeNumber('skewSeconds', options.skewSeconds ?? defaults.skewSeconds),
    defaultExpiresInSeconds: atMost('defaultExpiresInSeconds', positiveNumber('defaultExpiresInSeconds', options.defaultExpiresInSeconds ?? defaults.defaultExpiresInSeconds), MAX_EXPIRES_IN_SECONDS),
    timeoutMs: positiveInteger('timeoutMs', options.timeoutMs ?? defaults.timeoutMs),
    lease,
  };
}

/** `application/x-www-form-urlencoded` encoding of one value (RFC 6749 appendix B). */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** One token request. The token's expiry is counted from before the request was sent, never after. */
async function requestToken(settings: TokenSettings, signal: AbortSignal | undefined): Promise<StoredToken> {
  const { tokenUrl, clientId } = settings;
  const secret = typeof settings.clientSecret === 'function' ? await settings.clientSecret() : settings.clientSecret;
  if (typeof secret !== 'string' || secret === '') throw new InvalidOptionsError('clientSecret must resolve a non-empty string');
  const basicCredentials = Buffer.from(`${formEncode(clientId)}:${formEncode(secret)}`).toString('base64');
  const secretForms = secretFormsOf(clientId, secret, basicCredentials);
  const fail = (message: string, details: { status?: number; error?: string; errorDescription?: string; errorUri?: string } = {}, cause?: unknown) =>
    new TokenEndpointError(redact(message, secretForms), { tokenUrl, ...redactAll(details, secretForms) }, cause === undefined ? undefined : { cause });
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const sentAtMs = Date.now();
  let response: Response;
  let text: string;
  try {
    response = await fetch(tokenUrl, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basicCredentials}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams([['grant_type', 'client_credentials'], ...settings.form]).toString(),
      // A redirect would resend the client's credentials elsewhere.
      redirect: 'error',
      signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
    });
    text = await response.text();
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    if (timeout.aborted) throw fail(`token endpoint did not answer within ${settings.timeoutMs} ms`, {}, error);
    throw fail(`token endpoint request failed: ${(error as Error).message}`, {}, error);
  }
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: reported below from the status alone.
  }
  const string = (name: string) => (typeof body[name] === 'string' ? (body[name] as string) : undefined);
  if (!response.ok) {
    const details = { status: response.status, error: string('error'), errorDescription: string('error_description'), errorUri: string('error_uri') };
    const reason = [details.error, details.errorDescription].filter((part) => part !== undefined).join(': ');
    throw fail(`token endpoint answered ${response.status}${reason === '' ? ` ${response.statusText}` : ` ${reason}`}`, details);
  }
  const accessToken = string('access_token');
  if (accessToken === undefined || accessToken === '') throw fail(`token endpoint answered ${response.status} without an access_token`, { status: response.status });
  const expiresIn = body.expires_in === undefined ? settings.defaultExpiresInSeconds : lifetimeSecondsOf(body.expires_in);
  if (expiresIn === undefined) {
    throw fail(`token endpoint answered an invalid expires_in ${excerpt(body.expires_in)}: it must be a whole number of seconds from 1 to ${MAX_EXPIRES_IN_SECONDS}`, { status: response.status });
  }
  const expiresAtMs = sentAtMs + expiresIn * 1000;
  if (expiresAtMs <= Date.now()) throw fail(`token endpoint answered a token that expired before it arrived (expires_in ${expiresIn})`, { status: response.status });
  // RFC 6749 section 7.1: a client must not use a token whose type it does not understand; this one hands out bearer tokens.
  const tokenType = string('token_type');
  if (tokenType !== undefined && tokenType.toLowerCase() !== 'bearer') throw fail(`token endpoint answered a ${tokenType} token, not a Bearer token`, { status: response.status });
  return { accessToken, expiresAtMs };
}

/**
 * `expires_in` as RFC 6749 section 5.1 defines it, "the lifetime in seconds of the access token", a JSON number:
 * a whole number from 1 to `MAX_EXPIRES_IN_SECONDS`. A string of decimal digits is taken as that number too
 * (some servers, Azure AD v1 among them, send `"3599"`): it has one reading. Anything else has none or several
 * (`true`, `[3600]`, `"0x10"`, `"1e3"`, `" 60"`, `60.5`, `1e308`, `null`), and is `undefined`.
 */
function lifetimeSecondsOf(value: unknown): number | undefined {
  const seconds = typeof value === 'number' ? value : typeof value === 'string' && /^[1-9][0-9]{0,9}$/.test(value) ? Number(value) : Number.NaN;
  return Number.isInteger(seconds) && seconds >= 1 && seconds <= MAX_EXPIRES_IN_SECONDS ? seconds : undefined;
}

/** A value the endpoint sent, as JSON, cut short: the endpoint chooses its size. */
function excerpt(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function atMost(name: string, value: number, max: number): number {
  if (value > max) throw new InvalidOptionsError(`${name} must be at most ${max}, got ${value}`);
  return value;
}

/**
 * Every form in which the secret went out, longest first: an endpoint that echoes what it was sent echoes the
 * form-encoded secret (its escapes in either case) or the whole Basic credentials (base64, padded or not, or
 * base64url), rarely the raw string.
 */
function secretFormsOf(clientId: string, secret: string, basicCredentials: string): string[] {
  const lowerEscapes = (text: string) => text.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
  const base64Forms = (bytes: Buffer) => [bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url')];
  const forms = new Set([
    ...base64Forms(Buffer.from(basicCredentials, 'base64')),
    ...base64Forms(Buffer.from(`${clientId}:${secret}`)),
    ...[formEncode(secret), encodeURIComponent(secret)].flatMap((encoded) => [encoded, lowerEscapes(encoded)]),
    secret,
  ]);
  return [...forms].filter((form) => form !== '').sort((a, b) => b.length - a.length);
}

/** `text` with every form of the secret masked. */
function redact(text: string, secretForms: readonly string[]): string {
  return secretForms.reduce((masked, form) => masked.split(form).join('[redacted]'), text);
}

function redactAll<T extends Record<string, string | number | undefined>>(details: T, secretForms: readonly string[]): T {
  return Object.fromEntries(Object.entries(details).map(([name, value]) => [name, typeof value === 'string' ? redact(value, secretForms) : value])) as T;
}
