import type { HttpResponse } from './http-response.ts';

/** The handler's own validators of a stored response (never the ETag the middleware generates): what a revalidation sends. */
export interface Validators {
  readonly etag?: string;
  readonly lastModified?: string;
}

/**
 * A memoized HTTP response as stored in the cache. The item format is a contract: every version reads what an
 * older one wrote, so fields are only ever added, optional, and mean nothing when absent (a record written
 * before they existed has none of them).
 */
export interface StoredHttpResponse {
  readonly v: 1;
  readonly kind: 'http';
  /** The response as it goes to the client (the targeted fields it may not carry are in `targeted`). */
  readonly response: HttpResponse;
  /** When it was stored, epoch ms. */
  readonly storedAt: number;
  /** Its `Age` when stored, in seconds. */
  readonly age: number;
  /** The freshness it had left when stored, in seconds (0: stale at once, stored only to be revalidated). */
  readonly ttlSeconds: number;
  /** `must-revalidate` or `proxy-revalidate`: never served stale. */
  readonly mustRevalidate?: true;
  /** `no-cache`: validated with the handler before each use (stored only on a revalidating route). */
  readonly noCache?: true;
  /** Present on a revalidating route: the handler's validators, sent to it when the response is stale. */
  readonly validators?: Validators;
  /** The targeted fields taken out of `response` before it goes to clients (lower-case names): needed to read a 304's update. */
  readonly targeted?: Readonly<Record<string, string>>;
  /** The tags the handler's `Cache-Tag` and `Surrogate-Key` listed (taken out of `response`): kept when a 304 freshens it. */
  readonly tags?: readonly string[];
}

/** Any other handler result (a non-HTTP event memoized by a custom key), as stored. */
export interface StoredValue {
  readonly v: 1;
  readonly kind: 'value';
  readonly value: unknown;
}

/** What a memo key holds. */
export type StoredResult = StoredHttpResponse | StoredValue;

/** How a stored response stands at `nowMs`. */
export interface StoredTiming {
  /** Its age in seconds (RFC 9111 4.2.3: the age it had when stored plus the time since). */
  readonly ageSeconds: number;
  /** Freshness left in seconds; negative when stale. */
  readonly ttlSeconds: number;
  /** Past its freshness, or `no-cache`: not to be used without the handler's say. */
  readonly stale: boolean;
}

export function timingOf(stored: StoredHttpResponse, nowMs: number): StoredTiming {
  const resident = Math.max(0, Math.floor((nowMs - stored.storedAt) / 1000));
  return {
    ageSeconds: stored.age + resident,
    ttlSeconds: stored.ttlSeconds - resident,
    stale: stored.noCache === true || nowMs >= stored.storedAt + stored.ttlSeconds * 1000,
  };
}

/** Whether `value` is a stored result of the expected kind (an HTTP response for HTTP events), as any version wrote it. */
export function isStoredResult(value: unknown, http: boolean): value is StoredResult {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v.v !== 1) return false;
  if (!http) return v.kind === 'value' && 'value' in v;
  const response = v.response as Record<string, unknown> | undefined;
  return (
    v.kind === 'http' &&
    typeof v.storedAt === 'number' &&
    typeof v.age === 'number' &&
    typeof v.ttlSeconds === 'number' &&
    typeof response?.statusCode === 'number' &&
    isBag(response.headers) &&
    isBag(response.multiValueHeaders) &&
    Object.values(response.multiValueHeaders ?? {}).every(Array.isArray) &&
    (v.validators === undefined || isStrings(v.validators)) &&
    (v.targeted === undefined || isStrings(v.targeted)) &&
    (v.tags === undefined || (Array.isArray(v.tags) && v.tags.every((tag) => typeof tag === 'string')))
  );
}

function isBag(bag: unknown): boolean {
  return bag === undefined || (typeof bag === 'object' && bag !== null && !Array.isArray(bag));
}

function isStrings(bag: unknown): boolean {
  return isBag(bag) && Object.values(bag as object).every((value) => typeof value === 'string');
}
