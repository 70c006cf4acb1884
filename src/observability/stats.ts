import { countForTrace } from './tracing.ts';

/**
 * Counters of one `DynamoCache` instance (one execution environment), returned by `cache.stats()`.
 * All counts are since the instance was created.
 */
export interface CacheStats {
  /** Reads that returned a value (`hits = memoryHits + dynamoHits`). */
  hits: number;
  /** Reads that found no usable value, including reads turned into misses by an error. */
  misses: number;
  /** Hits answered by the in-memory tier, with no DynamoDB request. */
  memoryHits: number;
  /** Hits answered by DynamoDB. */
  dynamoHits: number;
  /** Values stored in DynamoDB. */
  writes: number;
  /** Items deleted, and values ended by `invalidate`. */
  deletes: number;
  /**
   * Times a fetcher (`getOrSet`, `wrap`) was called, or a fetch turn handed out (`acquire`: the middleware runs
   * the handler); for `getOrSetMany`, the keys its `fetchMany` calls were asked for.
   */
  fetches: number;
  /** `getOrSet`/`wrap` calls that joined a fetch already in flight in this process instead of starting one. */
  coalesced: number;
  /** Cache failures absorbed (each became a miss or a `false`): throttling, timeouts, outages, corrupt items. */
  errors: number;
  /** Of `errors`: DynamoDB throttling responses that outlasted the retries. */
  throttles: number;
  /** Of `errors`: operations cut off by the time budget. */
  timeouts: number;
  /** Of `errors`: items that could not be read (wrong types, unknown encoding, undecodable data). */
  corruptItems: number;
  /** Values not stored because their stored form exceeded `maxValueBytes`. */
  oversized: number;
  /** Retries of DynamoDB requests (throttling, 5xx, network errors, unprocessed batch keys). */
  retries: number;
  /** Times the circuit breaker opened. */
  circuitOpened: number;
  /** Operations that skipped DynamoDB because the circuit was open (each became a miss or a `false`). */
  circuitRejections: number;
  /** Of `hits`: stale values answered within `staleWhileRevalidateSeconds` while another caller refreshes. */
  staleHits: number;
  /**
   * Stale values answered within `staleIfErrorSeconds` because a refresh failed: this caller's fetch threw, or
   * another caller's did (or its deadline ended the wait for it).
   */
  staleIfError: number;
  /** Of `hits`: cached "not found" results (negative caching). */
  negativeHits: number;
  /** Refresh leases won (this caller fetched for the whole fleet). */
  leaseWins: number;
  /** Callers that waited for another caller's refresh. */
  leaseWaits: number;
  /** Waits that ran out (`lease.waitMs`) before the value appeared. */
  leaseWaitTimeouts: number;
  /** Fresh values refreshed early: ahead of their expiry by the first environment to recheck them, or by XFetch. */
  earlyRefreshes: number;
  /**
   * Fetches made without the refresh lease although it is on, because DynamoDB could not coordinate them: it is
   * down (5xx, network, open circuit) or refused (permissions, keys), its namespace generation could not be
   * read, or a wait for another caller's refresh ran out. DynamoDB merely throttling or slow is waited out instead.
   */
  uncoordinatedFetches: number;
  /** DynamoDB requests not sent because the call's deadline (less `deadlineMarginMs`) left no time: each became a miss or a `false`. */
  deadlineSkips: number;
  /**
   * `cacheAwsClient` calls answered by the service and not stored because their input or output holds a
   * member the AWS SDK marks sensitive and the cache has no `encryption` (a warning names the fix once per command).
   */
  secretsNotStored: number;
}

/** Names of the counters, for code that increments them. */
export type Counter = keyof CacheStats;

/**
 * Where per-invocation metrics go (`DynamoCacheOptions.metrics`): a Powertools `Metrics` instance fits as it
 * is, and flushes them as CloudWatch EMF with the invocation's other metrics (its `logMetrics` middleware).
 */
export interface CacheMetrics {
  addMetric(name: string, unit: 'Count', value: number): unknown;
}

/**
 * The counters published as metrics, and their names. A metric is a count per invocation with no
 * dimension of its own: cardinality stays bounded, and no key is ever part of a metric.
 */
export const METRIC_NAMES: Partial<Record<Counter, string>> = {
  hits: 'CacheHit',
  misses: 'CacheMiss',
  staleHits: 'CacheStaleServed',
  staleIfError: 'CacheStaleIfError',
  errors: 'CacheErrorAbsorbed',
  leaseWaits: 'CacheLeaseWait',
  fetches: 'CacheFetch',
};

/** Mutable counters behind `cache.stats()`, also published to `metrics` when given. */
export class StatsRecorder {
  readonly #metrics: CacheMetrics | undefined;

  constructor(metrics?: CacheMetrics) {
    this.#metrics = metrics;
  }

  readonly #counts: CacheStats = {
    hits: 0,
    misses: 0,
    memoryHits: 0,
    dynamoHits: 0,
    writes: 0,
    deletes: 0,
    fetches: 0,
    coalesced: 0,
    errors: 0,
    throttles: 0,
    timeouts: 0,
    corruptItems: 0,
    oversized: 0,
    retries: 0,
    circuitOpened: 0,
    circuitRejections: 0,
    staleHits: 0,
    staleIfError: 0,
    negativeHits: 0,
    leaseWins: 0,
    leaseWaits: 0,
    leaseWaitTimeouts: 0,
    earlyRefreshes: 0,
    uncoordinatedFetches: 0,
    deadlineSkips: 0,
    secretsNotStored: 0,
  };

  increment(counter: Counter, by = 1): void {
    this.#counts[counter] += by;
    countForTrace(counter, by);
    if (this.#metrics === undefined) return;
    const name = METRIC_NAMES[counter];
    try {
      if (name !== undefined) this.#metrics.addMetric(name, 'Count', by);
    } catch {
      // Metrics are a view of the cache, never a reason for it to fail its caller.
    }
  }

  /** A copy of the counters. */
  snapshot(): CacheStats {
    return { ...this.#counts };
  }
}
