import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Payload } from '../codec/value-codec.ts';
import type { CacheEntry, Decoded, ItemState } from '../storage/entry.ts';
import type { Slot } from '../storage/keys.ts';
import type { Lease, TagStamps } from '../storage/item.ts';
import { LeaseWaitTimeoutError } from '../errors.ts';
import { deadlinesFor, isFresh, shouldRefreshEarly, withinStaleWindow, type Lifetime } from './freshness.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { EarlyRefreshOptions, LeaseOptions } from '../options.ts';
import type { CallBudget } from '../resilience/dynamo-guard.ts';
import type { StatsRecorder } from '../observability/stats.ts';
import type { TwoTierStore } from '../storage/two-tier-store.ts';

/** How one `getOrSet` (or memoized request) treats freshness, refreshes and "not found". */
export interface RefreshPolicy extends Lifetime {
  readonly negativeTtlSeconds: number;
  readonly lease: Required<LeaseOptions> | false;
  readonly earlyRefresh: Required<EarlyRefreshOptions> | false;
  /** The tags the fetched value is stored with, stamped with their states' tokens (see `TagStates`). */
  readonly tagStamps?: TagStamps | undefined;
}

/** The caller's turn to fetch: it must end with `complete`, `fail` or `abandon`. */
export interface Turn {
  readonly slot: Slot;
  /** Set when this caller holds the refresh lease. */
  readonly owner: string | undefined;
  /** What to answer if the fetch fails: a stale value within `staleIfErrorSeconds`, or the current value of an early refresh. */
  readonly fallback: CacheEntry | undefined;
  /** The write replaces only a value fresh until no later than this (the one this turn saw); `undefined`: unconditionally. */
  readonly notFresherThanMs: number | undefined;
  readonly startedAt: number;
  /** What bounds the turn's own DynamoDB requests (its write, its lease's release). */
  readonly call: CallBudget;
}

type KnownSlot = Slot & { storageKey: string };

/** What the cache knows for a key: an answer, or the caller's turn to fetch. */
export type Resolution =
  | { readonly found: true; readonly entry: CacheEntry; readonly stale: boolean; readonly source: 'memory' | 'dynamo'; readonly decoded?: Decoded | undefined }
  | { readonly found: false; readonly turn: Turn };

/**
 * Decides, for one key, whether the caller answers from the cache or fetches, so that a fleet of
 * execution environments refreshes a key once:
 *
 * - a fresh value is answered (unless XFetch picks this caller to refresh it early, and it wins the lease);
 * - on a miss or a stale value, one caller wins the lease (a conditional write) and fetches; the others
 *   answer from a value within `staleWhileRevalidateSeconds` at once, or wait (bounded, with backoff) for
 *   the winner's value; a lease whose holder died is taken over when it expires;
 * - when the fetch fails, a value within `staleIfErrorSeconds` is answered instead of the error.
 *
 * Lambda freezes an environment once it has responded, so there is no refresh in the background: the lease
 * winner refreshes synchronously while everyone else is answered.
 */
export class RefreshCoordinator {
  readonly #store: TwoTierStore;
  readonly #stats: StatsRecorder;
  readonly #logger: CacheLogger;
  readonly #ownerPrefix = randomUUID();
  #turns = 0;

  constructor(store: TwoTierStore, stats: StatsRecorder, logger: CacheLogger) {
    this.#store = store;
    this.#stats = stats;
    this.#logger = logger;
  }

  /** Answers from the memory tier or DynamoDB, or hands the caller a turn to fetch. */
  async resolve(slot: Slot, policy: RefreshPolicy, call: CallBudget): Promise<Resolution> {
    const memory = this.#store.fromMemory(slot, Date.now());
    // Checked here, not only inside #earlyRefresh, so that a memory hit without early refresh awaits nothing.
    if (memory !== undefined) {
      const early = policy.earlyRefresh === false ? undefined : await this.#earlyRefresh(slot, memory, true, policy, policy.earlyRefresh.beta, call);
      return early ?? this.#hit(memory, 'memory', false);
    }
    // The namespace generation is unknown (DynamoDB unreachable, already logged): fetch; the value is kept in memory.
    if (!hasStorageKey(slot)) return this.#miss(slot, call, undefined, undefined, undefined);
    const read = await this.#store.read(slot, call);
    // DynamoDB is failing (already logged): coordinating through it is pointless, the caller fetches.
    if (!read.ok) return this.#miss(slot, call, undefined, undefined, undefined);
    const now = Date.now();
    const { entry } = read.state;
    if (entry !== undefined && isFresh(entry, now)) {
      const early = policy.earlyRefresh === false ? undefined : await this.#earlyRefresh(slot, entry, false, policy, policy.earlyRefresh.beta, call);
      return early ?? this.#hit(entry, 'dynamo', false, read.state.decoded);
    }
    const staleIfError = entry !== undefined && withinStaleWindow(entry, now, policy.staleIfErrorSeconds) ? entry : undefined;
    // An unreadable item cannot take part in the lease's condition: the fetch simply overwrites it.
    if (read.state.corrupt) return this.#miss(slot, call, undefined, staleIfError, undefined);
    if (policy.lease === false) return this.#miss(slot, call, undefined, staleIfError, read.state.seenFreshMs);
    return this.#leaseOrWait(slot, read.state, policy, policy.lease, staleIfError, call);
  }

  /**
   * Stores the fetched payload or, for `undefined`, a "not found" (with `negativeTtlSeconds`) or nothing.
   * The write leaves the lease item in place: the lease names the value it replaced, so a newer value ends
   * it. When nothing was written (nothing to store, a value too large, a newer value already there,
   * DynamoDB failing) the lease is given back, so waiters need not wait for it to expire.
   */
  async complete(turn: Turn, payload: Payload | undefined, policy: RefreshPolicy): Promise<boolean> {
    const now = Date.now();
    let written = false;
    const conditional = { notFresherThanMs: turn.notFresherThanMs, tags: policy.tagStamps };
    if (payload !== undefined) {
      // The fetch time is kept only for early refresh, its one reader: otherwise it is bytes every write pays for.
      const fetchMs = policy.earlyRefresh === false ? undefined : Math.round(now - turn.startedAt);
      written = await this.#store.write(turn.slot, payload, deadlinesFor(policy, now), turn.call, { ...conditional, fetchMs });
    } else if (policy.negativeTtlSeconds > 0) {
      const lifetime = { ttlSeconds: policy.negativeTtlSeconds, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 };
      written = await this.#store.write(turn.slot, undefined, deadlinesFor(lifetime, now), turn.call, conditional);
    }
    if (!written) await this.abandon(turn);
    return written;
  }

  /**
   * The fetch failed: gives the lease back and returns the entry to answer instead (a stale value within
   * `staleIfErrorSeconds`, or the still-fresh value of an early refresh), or `undefined` to let the error through.
   */
  async fail(turn: Turn, error: unknown): Promise<CacheEntry | undefined> {
    await this.#giveBack(turn, true);
    if (turn.fallback === undefined) return undefined;
    const stale = !isFresh(turn.fallback, Date.now());
    if (stale) this.#stats.increment('staleIfError');
    this.#logger.warn(`dynamo-cache: fetch failed; answering with the ${stale ? 'stale' : 'current'} value`, {
      key: turn.slot.storageKey ?? turn.slot.memoryKey,
      errorName: (error as Error)?.name,
      errorMessage: (error as Error)?.message,
    });
    return turn.fallback;
  }

  /**
   * Ends a turn that stores nothing: gives the lease back so waiters need not wait for it to expire. The
   * release is sent even when the caller has aborted (only its deadline bounds it): a lease left behind would
   * hold the whole fleet up until it expires.
   */
  async abandon(turn: Turn): Promise<void> {
    await this.#giveBack(turn, false);
  }

  /** Ends the turn's lease: deleted, or marked failed so that its waiters may answer stale (see `Lease.failed`). */
  async #giveBack(turn: Turn, failed: boolean): Promise<void> {
    if (turn.owner === undefined || !hasStorageKey(turn.slot)) return;
    const call = turn.call.signal === undefined ? turn.call : { untilMs: turn.call.untilMs };
    await this.#store.releaseLease(turn.slot, turn.owner, call, failed ? { forFreshMs: turn.notFresherThanMs ?? 0 } : undefined);
  }

  async #leaseOrWait(
    slot: KnownSlot,
    initial: ItemState,
    policy: RefreshPolicy,
    lease: Required<LeaseOptions>,
    staleIfError: CacheEntry | undefined,
    call: CallBudget,
  ): Promise<Resolution> {
    const waitUntil = Date.now() + lease.waitMs;
    // The caller's deadline (already less the margin kept for its fetcher) may end the wait first.
    const cutByDeadline = call.untilMs !== undefined && call.untilMs < waitUntil;
    const deadline = cutByDeadline ? call.untilMs! : waitUntil;
    let state = initial;
    let holder: Lease | undefined;
    // The holder of the last live lease seen: only its own lease, failed or run out, lets the stale value stand in.
    let waitedOn: string | undefined;
    let pause = lease.pollMs;
    let waited = false;
    for (;;) {
      const now = Date.now();
      if (state.entry !== undefined && isFresh(state.entry, now)) return this.#hit(state.entry, 'dynamo', false, state.decoded);
      // A lease taken for an older value than the one now stored is over: that refresh finished.
      const leaseAlive = holder !== undefined && holder.untilMs > now && holder.forFreshMs >= state.seenFreshMs;
      if (leaseAlive) waitedOn = holder!.owner;
      if (!leaseAlive) {
        // While we waited, the lease ended without a new value. The holder's fetch failed (its lease says so), or
        // it died (its lease ran out): the stale value stands in. A lease given back without a value for any
        // other reason (deleted: an error a stale value must not hide, nothing to store), or another holder's
        // (an old lease put back by someone with table access), is no failure to cover: this caller takes its
        // own turn and sees for itself.
        const holderFailed = holder !== undefined && holder.owner === waitedOn && (holder.failed === true || holder.untilMs <= now);
        if (waited && holderFailed && staleIfError !== undefined) {
          this.#stats.increment('staleIfError');
          return this.#hit(staleIfError, 'dynamo', true, undefined, true);
        }
        const owner = this.#newOwner();
        const attempt = await this.#store.acquireLease(slot, { owner, nowMs: now, untilMs: now + lease.ttlMs, forFreshMs: state.seenFreshMs }, call);
        if (!attempt.ok) return this.#miss(slot, call, undefined, staleIfError, state.seenFreshMs);
        if (attempt.acquired) {
          this.#stats.increment('leaseWins');
          return this.#miss(slot, call, owner, staleIfError, state.seenFreshMs);
        }
        // A lease nobody can vouch for (encryption on, signature missing): fetch without coordination.
        if (attempt.untrusted) return this.#miss(slot, call, undefined, staleIfError, state.seenFreshMs);
        holder = attempt.lease;
        if (holder !== undefined && holder.untilMs > Date.now()) waitedOn = holder.owner;
      }
      // Someone else is refreshing: answer from a value within the stale-while-revalidate window at once.
      if (state.entry !== undefined && withinStaleWindow(state.entry, Date.now(), policy.staleWhileRevalidateSeconds)) {
        return this.#hit(state.entry, 'dynamo', true);
      }
      if (!waited) {
        waited = true;
        this.#stats.increment('leaseWaits');
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return this.#waitedTooLong(slot, lease, staleIfError, state, call, cutByDeadline);
      // Jittered, so waiters started together do not poll together; doubling, so that a large fleet waiting on
      // one key does not load its partition (a poll is one strongly consistent BatchGetItem of two items).
      await pauseFor(Math.min(remaining, pause / 2 + Math.random() * (pause / 2)), call.signal);
      pause = Math.min(pause * 2, lease.maxPollMs);
      const poll = await this.#store.readWithLease(slot, call);
      if (!poll.ok && poll.failure === 'aborted') throw call.signal?.reason;
      // Cut at the deadline: the wait is over.
      if (!poll.ok && poll.failure === 'deadline') continue;
      // A throttled poll says "read less", not "DynamoDB is down": keep waiting rather than join the herd.
      if (!poll.ok && poll.failure === 'throttle') continue;
      if (!poll.ok) return this.#miss(slot, call, undefined, staleIfError, undefined);
      if (poll.state.corrupt) return this.#miss(slot, call, undefined, staleIfError, undefined);
      state = poll.state;
      holder = poll.lease;
    }
  }

  /**
   * The wait ran out: `waitMs`, or the caller's deadline. With `onWaitTimeout: 'throw'` that is an error;
   * otherwise the caller fetches itself (liveness), or, when it was its deadline that ended the wait, answers
   * with a stale value within `staleIfErrorSeconds` if there is one: no time is left for a fetch to fail in.
   */
  #waitedTooLong(slot: KnownSlot, lease: Required<LeaseOptions>, staleIfError: CacheEntry | undefined, state: ItemState, call: CallBudget, cutByDeadline: boolean): Resolution {
    this.#stats.increment('leaseWaitTimeouts');
    const waitedFor = cutByDeadline ? 'until the deadline' : `${lease.waitMs} ms`;
    this.#logger.warn(`dynamo-cache: waited for another refresh ${waitedFor}`, { key: slot.storageKey, waitMs: lease.waitMs, cutByDeadline, onWaitTimeout: lease.onWaitTimeout });
    if (lease.onWaitTimeout === 'throw') throw new LeaseWaitTimeoutError(`Waited ${waitedFor} for another caller to refresh ${slot.storageKey}`);
    if (cutByDeadline && staleIfError !== undefined) {
      this.#stats.increment('staleIfError');
      return this.#hit(staleIfError, 'dynamo', true, undefined, true);
    }
    return this.#miss(slot, call, undefined, staleIfError, state.seenFreshMs);
  }

  /**
   * XFetch: a turn to refresh a fresh value early, when chosen by chance and (with the lease) the lease is
   * won. An entry from the memory tier may be older than the stored value, so a win is checked against the
   * stored value first: if someone else already refreshed it, there is nothing to do.
   */
  async #earlyRefresh(slot: Slot, entry: CacheEntry, fromMemory: boolean, policy: RefreshPolicy, beta: number, call: CallBudget): Promise<Resolution | undefined> {
    const now = Date.now();
    if (entry.payload === undefined || !hasStorageKey(slot) || !shouldRefreshEarly(entry, now, beta)) return undefined;
    let owner: string | undefined;
    if (policy.lease !== false) {
      owner = this.#newOwner();
      const attempt = await this.#store.acquireLease(slot, { owner, nowMs: now, untilMs: now + policy.lease.ttlMs, forFreshMs: entry.freshUntilMs }, call);
      if (!attempt.ok || !attempt.acquired) return undefined;
      if (fromMemory) {
        const stored = await this.#store.read(slot, call, true);
        if (!stored.ok || stored.state.seenFreshMs > entry.freshUntilMs) {
          await this.#store.releaseLease(slot, owner, call);
          return undefined;
        }
      }
    }
    this.#stats.increment('earlyRefreshes');
    return { found: false, turn: { slot, owner, fallback: entry, notFresherThanMs: entry.freshUntilMs, startedAt: now, call } };
  }

  /** A lease owner id unique across the fleet: this instance's random prefix and a counter. */
  #newOwner(): string {
    return `${this.#ownerPrefix}:${++this.#turns}`;
  }

  /** Counts and returns a hit; a stale one answered because a refresh failed (`ifError`) counts as `staleIfError` only. */
  #hit(entry: CacheEntry, source: 'memory' | 'dynamo', stale: boolean, decoded?: Decoded, ifError = false): Resolution {
    this.#stats.increment('hits');
    this.#stats.increment(source === 'memory' ? 'memoryHits' : 'dynamoHits');
    if (stale && !ifError) this.#stats.increment('staleHits');
    if (entry.payload === undefined) this.#stats.increment('negativeHits');
    return { found: true, entry, stale, source, decoded };
  }

  #miss(slot: Slot, call: CallBudget, owner: string | undefined, fallback: CacheEntry | undefined, notFresherThanMs: number | undefined): Resolution {
    this.#stats.increment('misses');
    return { found: false, turn: { slot, owner, fallback, notFresherThanMs, startedAt: Date.now(), call } };
  }
}

/** Sleeps `ms`; a caller's abort ends it at once, rejecting with the caller's reason. */
async function pauseFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal === undefined ? undefined : { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}

function hasStorageKey(slot: Slot): slot is KnownSlot {
  return slot.storageKey !== undefined;
}
