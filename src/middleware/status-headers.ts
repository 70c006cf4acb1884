import { InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { booleanOption } from '../options.ts';
import { setHeader, type HttpResponse } from './http-response.ts';

/**
 * Which headers tell the client how its response was produced. On shared routes they also tell anyone what
 * others asked for recently (a hit means someone did), so they can be turned off.
 */
export interface StatusHeaderOptions {
  /** `X-Cache: Hit` / `X-Cache: Miss` (`RefreshHit` when the handler validated the stored response with a 304). Default `true`. */
  xCache?: boolean | undefined;
  /** `Age` on a response served from the cache (RFC 9111 5.1). Default `true`. */
  age?: boolean | undefined;
  /**
   * RFC 9211 `Cache-Status` (`dynamo-cache; hit; ttl=42`, `dynamo-cache; fwd=uri-miss; stored`): `true` for
   * the cache name `dynamo-cache`, or the name to use (an RFC 8941 token). Default `false`.
   */
  cacheStatus?: boolean | string | undefined;
}

/** How a response came to be, in RFC 9211 terms. */
export type CacheOutcome =
  /** Served from the cache; `ttlSeconds` is the freshness left (negative when stale). */
  | { readonly kind: 'hit'; readonly ageSeconds: number; readonly ttlSeconds: number }
  /** The handler ran because nothing usable was stored (`uri-miss`) or the client asked it to (`request`). */
  | { readonly kind: 'miss'; readonly forward: 'uri-miss' | 'request'; readonly stored: boolean }
  /** The handler failed (`status`, or a thrown error) and a stale response answered instead. */
  | { readonly kind: 'stale-on-error'; readonly ageSeconds: number; readonly ttlSeconds: number; readonly status: number | undefined }
  /** The handler answered `304` to the cache's conditional request: the stored response, freshened, answered (`ttlSeconds`: its new freshness). */
  | { readonly kind: 'revalidated'; readonly ageSeconds: number; readonly ttlSeconds: number; readonly stored: boolean };

/** RFC 8941 sf-token. */
const TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/;

/** The header that names where a response came from. */
const X_CACHE = 'X-Cache';

/** Its values: `RefreshHit` (as CloudFront says it) for a stored response the handler validated. */
const X_CACHE_VALUES = { hit: 'Hit', miss: 'Miss', 'stale-on-error': 'Hit', revalidated: 'RefreshHit' } as const satisfies Record<CacheOutcome['kind'], string>;

/** Writes the status headers the options ask for. */
export class StatusHeaders {
  readonly #xCache: boolean;
  readonly #age: boolean;
  readonly #cacheName: string | undefined;

  /** @throws InvalidOptionsError for a malformed option. */
  constructor(options: StatusHeaderOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('response.statusHeaders must be an object');
    assertKnownOptions('response.statusHeaders', options, ['xCache', 'age', 'cacheStatus']);
    this.#xCache = booleanOption('response.statusHeaders.xCache', options.xCache ?? true);
    this.#age = booleanOption('response.statusHeaders.age', options.age ?? true);
    const cacheStatus = options.cacheStatus ?? false;
    if (typeof cacheStatus !== 'string') {
      this.#cacheName = booleanOption('response.statusHeaders.cacheStatus', cacheStatus) ? 'dynamo-cache' : undefined;
    } else if (TOKEN.test(cacheStatus)) {
      this.#cacheName = cacheStatus;
    } else {
      throw new InvalidOptionsError(`response.statusHeaders.cacheStatus must be true, false or a cache name that is an RFC 8941 token, got ${JSON.stringify(cacheStatus)}`);
    }
  }

  /** Adds the headers for `outcome` to `response`. */
  write(response: HttpResponse, outcome: CacheOutcome): void {
    if (this.#xCache) setHeader(response, X_CACHE, X_CACHE_VALUES[outcome.kind]);
    if (this.#age && outcome.kind !== 'miss') setHeader(response, 'Age', String(outcome.ageSeconds));
    if (this.#cacheName !== undefined) setHeader(response, 'Cache-Status', `${this.#cacheName}; ${cacheStatusParameters(outcome)}`);
  }
}

function cacheStatusParameters(outcome: CacheOutcome): string {
  switch (outcome.kind) {
    case 'hit':
      return `hit; ttl=${outcome.ttlSeconds}`;
    case 'miss':
      return `fwd=${outcome.forward}${outcome.stored ? '; stored' : ''}`;
    case 'stale-on-error':
      return `fwd=stale${outcome.status === undefined ? '' : `; fwd-status=${outcome.status}`}; ttl=${outcome.ttlSeconds}`;
    case 'revalidated':
      return `fwd=stale; fwd-status=304; ttl=${outcome.ttlSeconds}${outcome.stored ? '; stored' : ''}`;
  }
}
