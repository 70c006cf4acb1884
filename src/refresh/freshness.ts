import { expiresAtSeconds } from './expiry.ts';

/**
 * The life of a cached value: fresh for `ttlSeconds`, then usable while a refresh runs
 * (`staleWhileRevalidateSeconds`) or when the refresh fails (`staleIfErrorSeconds`). The item's storage
 * expiry (the TTL attribute) covers the longer of the two windows.
 */
export interface Lifetime {
  readonly ttlSeconds: number;
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
}

/** When a value is fresh until, and when its item expires. */
export interface Deadlines {
  /** Epoch ms. */
  readonly freshUntilMs: number;
  /** Epoch seconds, the item's TTL attribute. */
  readonly expiresAtSeconds: number;
}

/**
 * The deadlines of a value written at `nowMs`. Freshness is exact to the millisecond; the storage expiry is
 * in whole seconds (DynamoDB's TTL format), rounded so that it never cuts freshness or a stale window short.
 */
export function deadlinesFor(lifetime: Lifetime, nowMs: number): Deadlines {
  const staleSeconds = Math.max(lifetime.staleWhileRevalidateSeconds, lifetime.staleIfErrorSeconds);
  return {
    freshUntilMs: Math.round(nowMs + lifetime.ttlSeconds * 1000),
    expiresAtSeconds: expiresAtSeconds(lifetime.ttlSeconds + staleSeconds, nowMs),
  };
}

/** The timing of a value as read. */
export interface Timing {
  readonly freshUntilMs: number;
  readonly expiresAtMs: number;
  /** How long the fetch that produced it took (ms), when known. */
  readonly fetchMs?: number;
}

/** Whether the value is still fresh. */
export function isFresh(timing: Timing, nowMs: number): boolean {
  return nowMs < timing.freshUntilMs && nowMs < timing.expiresAtMs;
}

/** Whether a stale value may still be served under a window of `seconds` past freshness. */
export function withinStaleWindow(timing: Timing, nowMs: number, seconds: number): boolean {
  return seconds > 0 && nowMs < timing.freshUntilMs + seconds * 1000 && nowMs < timing.expiresAtMs;
}

/**
 * Probabilistic early expiration ("XFetch", Vattani, Chierichetti and Lowenstein, VLDB 2015): refresh a
 * fresh value early with a probability that rises as expiry nears, scaled by how long the fetch takes
 * (`fetchMs`) and `beta` (1 is the paper's optimum; larger refreshes earlier). Only the caller that also
 * wins the lease refreshes, so a hot key is refreshed once, slightly before it expires, never by all.
 */
export function shouldRefreshEarly(timing: Timing, nowMs: number, beta: number, random: () => number = Math.random): boolean {
  const delta = timing.fetchMs ?? 0;
  if (delta <= 0 || beta <= 0) return false;
  // -ln(u) for u in (0, 1] is exponentially distributed: most draws are small, a few reach far ahead.
  return nowMs - delta * beta * Math.log(1 - random()) >= timing.freshUntilMs;
}
