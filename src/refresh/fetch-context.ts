import { decodePayload } from '../codec/value-codec.ts';
import { InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { finiteNumber, nonNegativeNumber } from '../options.ts';
import type { CallBudget } from '../resilience/dynamo-guard.ts';
import type { CacheEntry } from '../storage/entry.ts';
import type { RefreshPolicy } from './coordinator.ts';
import { assertTags } from '../invalidation/tags.ts';

/** How long a value may be answered past its TTL (see `SetOptions`). Each defaults to the call's, then the instance's. */
export interface StaleWindows {
  /** Seconds after the TTL during which `getOrSet` answers the stale value while one caller refreshes it. */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Seconds after the TTL during which `getOrSet` answers the stale value when the refresh fails. */
  staleIfErrorSeconds?: number | undefined;
}

/**
 * `ttlSeconds`: seconds, or a function of the value (and its key) that returns them, for values that carry
 * their own lifetime (`(token) => token.expires_in`). Zero or less stores an already-expired item.
 */
export type TtlSeconds<T> = number | ((value: T, key: string) => number);

/**
 * The value a key held before this fetch: stale (past its TTL, within its stale windows), or still fresh for
 * an early refresh. Handed over until the item's own expiry (the end of the longer stale window); never a
 * cached "not found", never a value past that expiry.
 */
export interface PreviousValue<T = unknown> {
  /** The value, decoded for this fetch (its own copy). */
  readonly value: T;
  /** When it stopped (or, for an early refresh, stops) being fresh. */
  readonly freshUntil: Date;
  /** When its item expires: the end of its stale windows. */
  readonly expiresAt: Date;
}

/**
 * What a `getOrSet` fetcher gets: the previous value, the call's signal, and a say in how its answer is
 * cached. A fetcher that takes no argument keeps working. `setTtl` and `noStore` count while the fetcher runs.
 * An `InvalidOptionsError` a member throws, let through by the fetcher, rejects the call (after the refresh
 * lease is given back): a bug in the fetcher is not an upstream failure for a stale value to cover.
 */
export interface FetchContext<TPrevious = unknown> {
  /** The value the key held, when the cache has one (see {@link PreviousValue}): to revalidate with its ETag, merge a delta, or keep it. */
  readonly previous: PreviousValue<TPrevious> | undefined;
  /**
   * Aborts when the call is given up: its `signal` (for a fetch shared by concurrent callers, once every one of
   * them has aborted), or its `deadline` (the deadline itself: `deadlineMarginMs` is the fetch's time). Pass it
   * to `fetch` or the AWS SDK (`abortSignal`). Never aborts for a call with neither.
   */
  readonly signal: AbortSignal;
  /**
   * Caches this answer for `seconds` (and `windows`) instead of the call's `ttlSeconds`; for an answer of
   * `undefined`, how long the "not found" is cached. Overrides a `ttlSeconds` function.
   * @throws InvalidOptionsError for a number that is not finite, a negative window or an unknown window name.
   */
  setTtl(seconds: number, windows?: StaleWindows): void;
  /**
   * Answers without storing (a partial or degraded answer). The refresh lease is given back at once: callers in
   * this process share the answer; other environments waiting on this fetch take their own turn (one of them
   * fetches, through the lease). Whatever the cache held stays as it was.
   */
  noStore(): void;
  /**
   * Adds tags to this answer, for `invalidateTags`, beside the call's `tags` (what the fetcher learnt: the
   * user, the tenant, the rows it read). The same rules apply: at most 64 in all, each 1-256 characters. A tag
   * added here is read (or created) when the answer is stored; if its state was written after the fetch
   * started (an invalidation that landed while the fetcher ran), the answer is not stored: it may predate it.
   * @throws InvalidOptionsError for a bad tag, or more than 64 in all.
   */
  addTags(tags: readonly string[]): void;
}

/** What a `getOrSetMany` `fetchMany` gets: as {@link FetchContext}, for the keys it is asked for. */
export interface FetchManyContext<TPrevious = unknown> {
  /** The values the keys held, by key, for those that have one (see {@link PreviousValue}). */
  readonly previous: ReadonlyMap<string, PreviousValue<TPrevious>>;
  /** As {@link FetchContext.signal}. */
  readonly signal: AbortSignal;
  /** As {@link FetchContext.setTtl}, for every key of this fetch (a `ttlSeconds` function gives each key its own). */
  setTtl(seconds: number, windows?: StaleWindows): void;
  /** As {@link FetchContext.noStore}, for the keys given, or for every key of this fetch when none is given. */
  noStore(...keys: string[]): void;
}

/** A lifetime a fetch set for itself with `setTtl`; windows left out are the call's. */
interface OwnLifetime extends StaleWindows {
  readonly ttlSeconds: number;
}

/** The signal, lifetime and no-store decision of one fetch: the state behind a fetch context. */
class Shaping {
  /** Set by `setTtl`. */
  ownLifetime: OwnLifetime | undefined;
  readonly #call: CallBudget;
  readonly #marginMs: number;
  #signal: AbortSignal | undefined;
  /** The errors this context threw at the fetcher (bad arguments). */
  #refused: WeakSet<object> | undefined; // made on the first refusal: a context per fetch, refusals are rare

  constructor(call: CallBudget, marginMs: number) {
    this.#call = call;
    this.#marginMs = marginMs;
  }

  // Built on first use: a fetcher that never reads it costs no timer and no listener.
  get signal(): AbortSignal {
    return (this.#signal ??= fetchSignal(this.#call, this.#marginMs));
  }

  setTtl(seconds: number, windows: StaleWindows = {}): void {
    this.checked(() => {
      if (typeof windows !== 'object' || windows === null) throw new InvalidOptionsError('setTtl() windows must be an object');
      assertKnownOptions('setTtl() windows', windows, ['staleWhileRevalidateSeconds', 'staleIfErrorSeconds']);
      const window = (name: keyof StaleWindows) => (windows[name] === undefined ? {} : { [name]: nonNegativeNumber(`setTtl() ${name}`, windows[name]) });
      this.ownLifetime = { ttlSeconds: finiteNumber('setTtl() seconds', seconds), ...window('staleWhileRevalidateSeconds'), ...window('staleIfErrorSeconds') };
    });
  }

  /**
   * Whether `error` is one this context threw at the fetcher for a bad argument: a bug in the caller's code,
   * which the fetch passes on to the caller as it is. Taken for the upstream's failure, it would be hidden behind
   * a stale value (stale-if-error) and hold the fleet off the upstream for a second (a failed lease).
   */
  refused(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.#refused?.has(error) === true;
  }

  /** Runs a member's checks, remembering the `InvalidOptionsError` they throw (see `refused`). */
  protected checked(run: () => void): void {
    try {
      run();
    } catch (error) {
      if (error instanceof InvalidOptionsError) (this.#refused ??= new WeakSet()).add(error);
      throw error;
    }
  }

  /** The policy an answer of this fetch is stored under (see {@link policyFor}). */
  policyFor<T>(base: RefreshPolicy, key: string, value: T | undefined, ttl: TtlSeconds<T> | undefined): RefreshPolicy {
    return policyFor(base, key, value, this.ownLifetime, ttl);
  }
}

/** The context of a `getOrSet` fetch. */
export class SingleFetchContext<T> extends Shaping implements FetchContext<T> {
  readonly previous: PreviousValue<T> | undefined;
  /** Set by `noStore`. */
  skipped = false;
  /** The answer's tags: the call's, and those `addTags` added. */
  tags: readonly string[] | undefined;

  constructor(previous: CacheEntry | undefined, call: CallBudget, marginMs: number, tags?: readonly string[]) {
    super(call, marginMs);
    this.previous = previousValueOf<T>(previous, Date.now());
    this.tags = tags;
  }

  noStore(): void {
    this.skipped = true;
  }

  addTags(tags: readonly string[]): void {
    this.checked(() => {
      const added = assertTags('addTags() tags', tags);
      this.tags = assertTags('the tags of this answer', [...(this.tags ?? []), ...added]);
    });
  }
}

/** The context of a `getOrSetMany` fetch. */
export class ManyFetchContext<T> extends Shaping implements FetchManyContext<T> {
  readonly previous: ReadonlyMap<string, PreviousValue<T>>;
  readonly #keys: ReadonlySet<string>;
  readonly #skipped = new Set<string>();

  constructor(previous: ReadonlyMap<string, CacheEntry | undefined>, call: CallBudget, marginMs: number) {
    super(call, marginMs);
    this.#keys = new Set(previous.keys());
    const now = Date.now();
    const found = new Map<string, PreviousValue<T>>();
    for (const [key, entry] of previous) {
      const value = previousValueOf<T>(entry, now);
      if (value !== undefined) found.set(key, value);
    }
    this.previous = found;
  }

  noStore(...keys: string[]): void {
    this.checked(() => {
      for (const key of keys) {
        if (!this.#keys.has(key)) throw new InvalidOptionsError(`noStore(): ${JSON.stringify(key)} is not one of the keys of this fetch`);
      }
    });
    for (const key of keys.length === 0 ? this.#keys : keys) this.#skipped.add(key);
  }

  /** Whether `noStore` named `key` (or every key). */
  skipped(key: string): boolean {
    return this.#skipped.has(key);
  }
}

/**
 * The policy a fetched answer is stored under: the fetch's own lifetime (`setTtl`), else the `ttlSeconds`
 * function's result for a value, else the call's. For an answer of `undefined`, `setTtl` sets how long the
 * "not found" is kept.
 * @throws InvalidOptionsError when the `ttlSeconds` function throws or returns anything but a finite number.
 */
export function policyFor<T>(base: RefreshPolicy, key: string, value: T | undefined, own: OwnLifetime | undefined, ttl: TtlSeconds<T> | undefined): RefreshPolicy {
  if (own !== undefined) {
    if (value === undefined) return { ...base, negativeTtlSeconds: Math.max(0, own.ttlSeconds) };
    return {
      ...base,
      ttlSeconds: own.ttlSeconds,
      staleWhileRevalidateSeconds: own.staleWhileRevalidateSeconds ?? base.staleWhileRevalidateSeconds,
      staleIfErrorSeconds: own.staleIfErrorSeconds ?? base.staleIfErrorSeconds,
    };
  }
  if (value === undefined || typeof ttl !== 'function') return base;
  return { ...base, ttlSeconds: ttlOfValue(ttl, value, key) };
}

/**
 * Calls a `ttlSeconds` function.
 * @throws InvalidOptionsError when it throws or returns anything but a finite number.
 */
export function ttlOfValue<T>(ttl: (value: T, key: string) => number, value: T, key: string): number {
  let seconds: unknown;
  try {
    seconds = ttl(value, key);
  } catch (error) {
    throw new InvalidOptionsError(`the ttlSeconds function threw: ${(error as Error)?.message}`, { cause: error });
  }
  // The key stays out of the message: it is logged where keys may not be (hashKeys), with the storage key beside it.
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) throw new InvalidOptionsError(`the ttlSeconds function must return a finite number of seconds, got ${excerpt(seconds)}`);
  return seconds;
}

/** Checks a `ttlSeconds` option: a finite number, a function, or absent. */
export function assertTtlOption(name: string, ttl: unknown): void {
  if (ttl !== undefined && typeof ttl !== 'function') finiteNumber(name, ttl);
}

/** The previous value an entry gives a fetch, decoded on first read: none for a "not found" or an entry past its expiry. */
export function previousValueOf<T>(entry: CacheEntry | undefined, nowMs: number): PreviousValue<T> | undefined {
  const payload = entry?.payload;
  if (payload === undefined || nowMs >= entry!.expiresAtMs) return undefined;
  let decoded: { value: T } | undefined;
  return {
    get value() {
      return (decoded ??= { value: decodePayload(payload) as T }).value;
    },
    freshUntil: new Date(entry!.freshUntilMs),
    expiresAt: new Date(entry!.expiresAtMs),
  };
}

/** The signal of a fetch: the call's, and its deadline (`untilMs` is the deadline less the margin kept for the fetch). */
function fetchSignal(call: CallBudget, marginMs: number): AbortSignal {
  const signals: AbortSignal[] = [];
  if (call.signal !== undefined) signals.push(call.signal);
  if (call.untilMs !== undefined && Number.isFinite(call.untilMs)) signals.push(AbortSignal.timeout(Math.max(0, Math.ceil(call.untilMs + marginMs - Date.now()))));
  if (signals.length === 0) return new AbortController().signal;
  return signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
}

/** A value a caller's function returned, for an error message, cut short. */
function excerpt(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'function' ? 'a function' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value); // a bigint
  }
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
