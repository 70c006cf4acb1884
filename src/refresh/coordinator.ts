import { randomUUID } from 'node:crypto';
import type { Payload } from '../codec/value-codec.ts';
import type { CacheEntry, Decoded, ItemState } from '../storage/entry.ts';
import type { Slot } from '../storage/keys.ts';
import type { Lease, TagStamps } from '../storage/item.ts';
import type { DeferReason, Held } from '../storage/memory-tier.ts';
import { LeaseWaitTimeoutError } from '../errors.ts';
import { deadlinesFor, isFresh, shouldRefreshEarly, withinStaleWindow, type Lifetime } from './freshness.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { EarlyRefreshOptions, LeaseOptions } from '../options.ts';
import { morePatience, type CallBudget, type FailureKind } from '../resilience/dynamo-guard.ts';
import { jittered, pauseFor } from '../resilience/abort.ts';
import type { StatsRecorder } from '../observability/stats.ts';
import type { LeaseReadResult, ReadResult, TwoTierStore } from '../storage/two-tier-store.ts';

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
  /** When the turn was handed out (epoch ms), before its fetch: a tagged value is stamped with no state newer. */
  readonly startedAt: number;
  /** What bounds the turn's own DynamoDB requests (its write, its lease's release). */
  readonly call: CallBudget;
  /** The value the key held when the turn was handed out (stale, or fresh for a refresh ahead of time), for the fetch to see. */
  readonly previous?: CacheEntry | undefined;
}

type KnownSlot = Slot & { storageKey: string };

/** How a caller came to `resolve`: what it already knows, and how it waits. */
export interface ResolveFrom {
  /** The key's item as read (one BatchGetItem for many keys), after a miss in the memory tier: `resolve` looks in neither again. */
  readonly read?: ReadResult | undefined;
  /** Called once when the caller starts waiting for another caller's refresh (it lost the lease). */
  readonly onWait?: (() => void) | undefined;
  /** How a waiter rereads the key and its lease (a batch polls all its waiting keys together). Default: `readWithLease`. */
  readonly poll?: ((slot: KnownSlot, call: CallBudget) => Promise<LeaseReadResult>) | undefined;
  /** When the slot's namespace generation is unknown, waits for it (see `NamespaceGeneration.settle`) until the time it is given. */
  readonly settle?: ((untilMs: number) => Promise<Slot>) | undefined;
}

/** What the cache knows for a key: an answer, or the caller's turn to fetch. */
export type Resolution =
  | { readonly found: true; readonly entry: CacheEntry; readonly stale: boolean; readonly source: 'memory' | 'dynamo'; readonly decoded?: Decoded | undefined }
  | { readonly found: false; readonly turn: Turn };

/** After a refresh failed, callers that have a value to answer leave the upstream alone this long (across the fleet, through the lease). */
export const FAILED_REFRESH_RETRY_MS = 1000;
/** The first pause of a recheck put off without `lease` options, in ms (`lease.maxPollMs` otherwise); it doubles while DynamoDB fails. */
const DEFER_BASE_MS = 250;
/** How long a coordinating caller's timeout makes the others of its environment start with its longer budget, in ms. */
const SLOW_REMEMBERED_MS = 10_000;
/** The longest pause between a waiter's polls while DynamoDB throttles them or is slow, in ms. */
const MAX_PRESSED_POLL_MS = 1000;
/** The longest a recheck is put off while DynamoDB fails, in ms. */
const MAX_DEFER_MS = 4000;

/** A value to answer instead of fetching, and where it came from. */
interface Fallback {
  readonly entry: CacheEntry;
  readonly source: 'memory' | 'dynamo';
}

/**
 * Decides, for one key, whether the caller answers from the cache or fetches, so that a fleet of
 * execution environments refreshes a key once:
 *
 * - a fresh value is answered: from memory until the environment's recheck, a random point in the last tenth of
 *   its time there, so that a fleet does not come back to DynamoDB for a key at one moment; a value about to
 *   expire is refreshed ahead of its expiry by the first environment to recheck it (it takes the lease), while the
 *   others keep answering it;
 * - on a miss or a stale value, one caller wins the lease (a conditional write) and fetches; the others
 *   answer from a value within `staleWhileRevalidateSeconds` at once, or wait (bounded, with backoff) for
 *   the winner's value; a lease whose holder died is taken over when it expires;
 * - when the fetch fails, a value within `staleIfErrorSeconds` is answered instead of the error, and the fleet
 *   leaves the upstream alone for a second (the failed lease says until when);
 * - when DynamoDB throttles or is slow, the caller answers what it holds in memory (fresh, or stale within its
 *   windows) or waits and asks again within the lease's bounds: pressure on DynamoDB never sends the fleet to
 *   the upstream. Only a DynamoDB that is down or refuses (or a wait that runs out) leaves a caller to fetch
 *   without the lease: one fetch per environment, whose value its memory then keeps.
 *
 * Lambda freezes an environment once it has responded, so there is no refresh in the background: the lease
 * winner refreshes synchronously while everyone else is answered.
 */
export class RefreshCoordinator {
  readonly #store: TwoTierStore;
  readonly #stats: StatsRecorder;
  readonly #logger: CacheLogger;
  /** The time budget of one DynamoDB operation (`timeoutMs`): doubled for a caller that waits on a slow DynamoDB. */
  readonly #timeoutMs: number;
  readonly #ownerPrefix = randomUUID();
  #turns = 0;
  /** DynamoDB timed out on a waiting caller lately: the budget its next requests start from, and until when. */
  #slow: { budgetMs: number; untilMs: number } | undefined;

  constructor(store: TwoTierStore, stats: StatsRecorder, logger: CacheLogger, timeoutMs: number) {
    this.#store = store;
    this.#stats = stats;
    this.#logger = logger;
    this.#timeoutMs = timeoutMs;
  }

  /** Answers from the memory tier or DynamoDB, or hands the caller a turn to fetch (see {@link ResolveFrom}). */
  async resolve(slot: Slot, policy: RefreshPolicy, call: CallBudget, from: ResolveFrom = {}): Promise<Resolution> {
    // A caller that read the key itself checked the memory tier first (which the read has filled since).
    const memory = from.read === undefined ? this.#store.fromMemory(slot, Date.now()) : undefined;
    // Checked here, not only inside #earlyRefresh, so that a memory hit without early refresh awaits nothing.
    if (memory !== undefined) {
      const early = policy.earlyRefresh === false ? undefined : await this.#earlyRefresh(slot, memory, true, policy, policy.earlyRefresh.beta, call);
      return early ?? this.#hit(memory, 'memory', false);
    }
    const now = Date.now();
    let held = this.#store.held(slot, now);
    // Put off: answered from memory while another environment refreshes, or DynamoDB or the refresh fails.
    if (held?.deferred !== undefined && now < held.recheckAtMs) {
      const kept = this.#fromHeld(held, now, policy, held.deferred);
      if (kept !== undefined) return kept;
    }
    if (!hasStorageKey(slot)) {
      // The namespace generation is unknown (DynamoDB failing, already logged): what memory holds, or a wait for it.
      const kept = this.#fromHeld(held ?? this.#store.held(slot, now, true), now, policy, 'failing');
      if (kept !== undefined) return kept;
      if (policy.lease !== false && from.settle !== undefined) slot = await from.settle(now + policy.lease.waitMs);
      if (!hasStorageKey(slot)) return this.#uncoordinated(slot, call, policy, undefined, undefined, held?.entry, 'its namespace generation could not be read');
    }
    // Past its freshness, what memory holds is a fallback and the lease decides: the value and its lease in one request.
    const withLease = held !== undefined && !isFresh(held.entry, now) && policy.lease !== false;
    // DynamoDB was slow a moment ago and nothing held could answer if it is again: the read gets the longer budget.
    const slowMs = this.#patience(now);
    const patient = slowMs === undefined || answers(held, now, policy, 'failing') ? call : { ...call, timeoutMs: slowMs };
    const read = from.read ?? (withLease ? await this.#store.readWithLease(slot, patient) : await this.#store.read(slot, patient));
    if (!read.ok) return this.#dynamoFailed(slot, held, read.failure, policy, call, now, from);
    const { entry } = read.state;
    // DynamoDB holds no value (deleted, ended by `invalidate`): what memory held is gone too, never a fallback.
    if (entry === undefined && read.state.corrupt !== true) held = undefined;
    if (entry !== undefined && isFresh(entry, Date.now())) {
      // What this environment held is still what is stored, and it ends soon. With a stale-while-revalidate window
      // the fleet may answer it past its end while one caller refreshes it: come back then, at a time of this
      // environment's own, so that the fleet does not come back at once. Without one: refresh it ahead of its end.
      if (held?.ahead && policy.lease !== false && entry.payload !== undefined && read.state.seenFreshMs <= held.entry.freshUntilMs) {
        if (policy.staleWhileRevalidateSeconds > 0) {
          this.#store.defer(slot, entry.freshUntilMs + Math.random() * Math.min(held.spreadMs, policy.staleWhileRevalidateSeconds * 1000), 'refreshing');
          return this.#hit(entry, 'dynamo', false, read.state.decoded);
        }
        return this.#refreshAhead(slot, read.state, policy, policy.lease, call);
      }
      const early = policy.earlyRefresh === false ? undefined : await this.#earlyRefresh(slot, entry, false, policy, policy.earlyRefresh.beta, call);
      return early ?? this.#hit(entry, 'dynamo', false, read.state.decoded);
    }
    const staleIfError = newest(Date.now(), policy.staleIfErrorSeconds, read.state, held)?.entry;
    // An unreadable item cannot take part in the lease's condition: the fetch simply overwrites it.
    if (read.state.corrupt) return this.#miss(slot, call, undefined, staleIfError, undefined, held?.entry);
    if (policy.lease === false) return this.#miss(slot, call, undefined, staleIfError, read.state.seenFreshMs, entry ?? held?.entry);
    return this.#leaseOrWait(slot, read.state, 'lease' in read ? { lease: read.lease as Lease | undefined } : undefined, held, policy, policy.lease, call, now, from);
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
    // The fleet waits for this write: DynamoDB throttling or slow is given a second chance, with more time.
    // A refresh's value is the fleet's: spread over pieces when large (see `spreadValueBytes`).
    const conditional = { notFresherThanMs: turn.notFresherThanMs, patienceMs: morePatience(undefined, this.#timeoutMs), spread: true, tags: policy.tagStamps };
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
    const retryAtMs = Date.now() + FAILED_REFRESH_RETRY_MS;
    await this.#giveBack(turn, retryAtMs);
    if (turn.fallback === undefined) return undefined;
    // Answered from memory until the fleet tries the upstream again (if memory holds it).
    this.#store.defer(turn.slot, retryAtMs + jittered(FAILED_REFRESH_RETRY_MS), 'failing');
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
    await this.#giveBack(turn, undefined);
  }

  /**
   * Ends the turn's lease: deleted, or, when the fetch failed (`retryAtMs`), marked failed so that its waiters may
   * answer stale and callers with a value to answer leave the upstream alone until `retryAtMs` (see `Lease.failed`).
   */
  async #giveBack(turn: Turn, retryAtMs: number | undefined): Promise<void> {
    if (turn.owner === undefined || !hasStorageKey(turn.slot)) return;
    const call = turn.call.signal === undefined ? turn.call : { untilMs: turn.call.untilMs };
    await this.#store.releaseLease(turn.slot, turn.owner, call, retryAtMs === undefined ? undefined : { forFreshMs: turn.notFresherThanMs ?? 0, retryAtMs });
  }

  /**
   * A stale or absent value: take the lease, or answer a stale value, or wait for the holder's value. `initial`
   * is `undefined` when DynamoDB could not be read (throttled, slow): the caller then waits and asks again.
   * `seen` is the lease as read with the value, when it was. The wait is bounded from `since`, when the call
   * began waiting (on the namespace generation, say), and no request of it outlives that bound.
   */
  async #leaseOrWait(
    slot: KnownSlot,
    initial: ItemState | undefined,
    seen: { lease: Lease | undefined } | undefined,
    held: Held | undefined,
    policy: RefreshPolicy,
    lease: Required<LeaseOptions>,
    call: CallBudget,
    since: number,
    from: ResolveFrom,
  ): Promise<Resolution> {
    const waitUntil = since + lease.waitMs;
    // The caller's deadline (already less the margin kept for its fetcher) may end the wait first.
    const cutByDeadline = call.untilMs !== undefined && call.untilMs < waitUntil;
    const deadline = cutByDeadline ? call.untilMs! : waitUntil;
    let state = initial;
    // When `state` was read (a poll's start): what it says may predate a value stored since.
    let stateAtMs = Date.now();
    // The end of the last live lease this caller waited on.
    let waitedUntilMs = Number.NEGATIVE_INFINITY;
    let holder = seen?.lease;
    // Whether `holder` is what DynamoDB holds now (read, or returned by a lost attempt), rather than unknown.
    let known = seen !== undefined;
    // Whether this caller may try to take the lease now: not while what it last tried was throttled or too slow.
    let mayTake = true;
    // The holder of the last live lease seen: only its own lease, failed or run out, lets the stale value stand in.
    let waitedOn: string | undefined;
    let pause = lease.pollMs;
    let waited = false;
    // A longer time budget for each request, once one timed out: a slow DynamoDB is waited for, not given up on.
    let patience = this.#patience(Date.now());
    const bounded = { ...call, untilMs: deadline };
    const budget = (): CallBudget => (patience === undefined ? bounded : { ...bounded, timeoutMs: patience });
    // Under pressure the pauses grow past `maxPollMs`: a fleet of waiters polling a throttled partition is its load.
    const pressed = (failure: FailureKind) => {
      if (failure === 'timeout') {
        patience = morePatience(patience, this.#timeoutMs);
        this.#slow = { budgetMs: patience, untilMs: Date.now() + SLOW_REMEMBERED_MS };
      }
      pause = Math.min(pause * 2, MAX_PRESSED_POLL_MS);
    };
    for (;;) {
      const now = Date.now();
      if (state?.entry !== undefined && isFresh(state.entry, now)) return this.#hit(state.entry, 'dynamo', false, state.decoded);
      if (state !== undefined) {
        // A lease taken for an older value than the one now stored is over: that refresh finished.
        const leaseAlive = holder !== undefined && holder.untilMs > now && holder.forFreshMs >= state.seenFreshMs;
        if (leaseAlive) {
          waitedOn = holder!.owner;
          waitedUntilMs = Math.max(waitedUntilMs, holder!.untilMs);
        } else if (mayTake) {
          const staleIfError = newest(now, policy.staleIfErrorSeconds, state, held);
          // While we waited, the lease ended without a new value. The holder's fetch failed (its lease says so), or
          // it died (its lease ran out): the stale value stands in. A lease given back without a value for any
          // other reason (deleted: an error a stale value must not hide, nothing to store), or another holder's
          // (an old lease put back by someone with table access), is no failure to cover: this caller takes its
          // own turn and sees for itself.
          const holderFailed = holder !== undefined && holder.owner === waitedOn && (holder.failed === true || holder.untilMs <= now);
          if (waited && holderFailed && staleIfError !== undefined) return this.#staleIfError(slot, staleIfError, holder!.retryAtMs);
          // With a value to answer if the refresh fails, a look at the lease (small) comes first: a refresh that
          // failed a moment ago means the fleet leaves the upstream alone until the lease says, answering what it has.
          if (!known && staleIfError !== undefined) {
            const look = await this.#store.readLease(slot, budget());
            if (look.ok) {
              holder = look.lease;
              known = true;
              continue;
            }
            if (look.failure === 'aborted') throw call.signal?.reason;
            const kept = this.#pressure(slot, state, held, policy);
            if (kept !== undefined) return kept;
          }
          if (known && holder?.failed === true && (holder.retryAtMs ?? 0) > now && holder.forFreshMs >= state.seenFreshMs && staleIfError !== undefined) {
            return this.#staleIfError(slot, staleIfError, holder.retryAtMs);
          }
          const owner = this.#newOwner();
          const attempt = await this.#store.acquireLease(slot, { owner, nowMs: now, untilMs: now + lease.ttlMs, forFreshMs: state.seenFreshMs }, budget());
          if (!attempt.ok) {
            if (attempt.failure === 'aborted') throw call.signal?.reason;
            if (attempt.failure === 'deadline') {
              if (!cutByDeadline && Date.now() >= deadline) return this.#waitedTooLong(slot, policy, lease, state, held, call, false);
              return this.#miss(slot, call, undefined, staleIfError?.entry, state.seenFreshMs, state?.entry ?? held?.entry);
            }
            // Throttled or slow: many are trying, or DynamoDB is under pressure. Answer what is held, or wait and look again.
            if (attempt.failure !== 'throttle' && attempt.failure !== 'timeout') return this.#uncoordinated(slot, call, policy, staleIfError?.entry, state.seenFreshMs, state?.entry ?? held?.entry, `the lease could not be taken (${attempt.failure})`);
            pressed(attempt.failure);
            const kept = this.#pressure(slot, state, held, policy);
            if (kept !== undefined) return kept;
            // Not again before a poll has seen the lease free: a herd of lease writes is what throttles them.
            known = false;
            mayTake = false;
          } else if (attempt.acquired) {
            // The lease waited on ran out after this caller last saw the value (its polls failed meanwhile): the lease
            // names the value it replaced, so the holder may well have stored a new one, which one read tells.
            if (stateAtMs < waitedUntilMs) {
              const stored = await this.#store.read(slot, budget(), true);
              if (stored.ok && stored.state.entry !== undefined && stored.state.seenFreshMs > state.seenFreshMs && isFresh(stored.state.entry, Date.now())) {
                void this.#store.releaseLease(slot, owner, budget());
                return this.#hit(stored.state.entry, 'dynamo', false, stored.state.decoded);
              }
            }
            this.#stats.increment('leaseWins');
            return this.#miss(slot, call, owner, staleIfError?.entry, state.seenFreshMs, state?.entry ?? held?.entry);
          } else if (attempt.untrusted) {
            // A lease nobody can vouch for (encryption on, signature missing): fetch without coordination.
            return this.#miss(slot, call, undefined, staleIfError?.entry, state.seenFreshMs, state?.entry ?? held?.entry);
          } else {
            holder = attempt.lease;
            known = true;
            if (holder !== undefined && holder.untilMs > Date.now()) waitedOn = holder.owner;
          }
        }
        // Someone else is refreshing: answer from a value within the stale-while-revalidate window at once.
        const stale = newest(Date.now(), policy.staleWhileRevalidateSeconds, state, held);
        if (stale !== undefined) {
          this.#store.defer(slot, Date.now() + this.#deferMs(undefined, policy), 'refreshing');
          return this.#hit(stale.entry, stale.source, true);
        }
      }
      if (!waited) {
        waited = true;
        this.#stats.increment('leaseWaits');
        from.onWait?.();
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return this.#waitedTooLong(slot, policy, lease, state, held, call, cutByDeadline);
      // Jittered, so waiters started together do not poll together; doubling, so that a large fleet waiting on
      // one key does not load its partition (a poll is one eventually consistent BatchGetItem of two items).
      await pauseFor(Math.min(remaining, jittered(pause)), call.signal);
      pause = Math.max(pause, Math.min(pause * 2, lease.maxPollMs));
      const pollAtMs = Date.now();
      const poll = await (from.poll === undefined ? this.#store.readWithLease(slot, budget()) : from.poll(slot, budget()));
      if (!poll.ok) {
        if (poll.failure === 'aborted') throw call.signal?.reason;
        // Cut at the deadline: the wait is over.
        if (poll.failure === 'deadline') continue;
        // A throttled or slow poll says "read less", not "DynamoDB is down": answer what is held, or keep waiting
        // rather than join the herd.
        if (poll.failure === 'throttle' || poll.failure === 'timeout') {
          pressed(poll.failure);
          const kept = this.#pressure(slot, state, held, policy);
          if (kept !== undefined) return kept;
          continue;
        }
        return this.#uncoordinated(slot, call, policy, newest(Date.now(), policy.staleIfErrorSeconds, state, held)?.entry, undefined, state?.entry ?? held?.entry, `DynamoDB failed (${poll.failure})`);
      }
      if (poll.state.corrupt) return this.#miss(slot, call, undefined, newest(Date.now(), policy.staleIfErrorSeconds, poll.state, held)?.entry, undefined, held?.entry);
      state = poll.state;
      stateAtMs = pollAtMs;
      holder = poll.lease;
      if (state.entry === undefined && state.corrupt !== true) held = undefined;
      known = true;
      mayTake = true;
    }
  }

  /**
   * The wait ran out: `waitMs`, or the caller's deadline. With `onWaitTimeout: 'throw'` that is an error;
   * otherwise the caller fetches itself (liveness), or, when it was its deadline that ended the wait, answers
   * with a stale value within `staleIfErrorSeconds` if there is one: no time is left for a fetch to fail in.
   */
  #waitedTooLong(slot: KnownSlot, policy: RefreshPolicy, lease: Required<LeaseOptions>, state: ItemState | undefined, held: Held | undefined, call: CallBudget, cutByDeadline: boolean): Resolution {
    this.#stats.increment('leaseWaitTimeouts');
    const waitedFor = cutByDeadline ? 'until the deadline' : `${lease.waitMs} ms`;
    this.#logger.warn(`dynamo-cache: waited for another refresh ${waitedFor}`, { key: slot.storageKey, waitMs: lease.waitMs, cutByDeadline, onWaitTimeout: lease.onWaitTimeout });
    if (lease.onWaitTimeout === 'throw') throw new LeaseWaitTimeoutError(`Waited ${waitedFor} for another caller to refresh ${slot.storageKey}`);
    const staleIfError = newest(Date.now(), policy.staleIfErrorSeconds, state, held);
    if (cutByDeadline && staleIfError !== undefined) {
      this.#stats.increment('staleIfError');
      return this.#hit(staleIfError.entry, staleIfError.source, true, undefined, true);
    }
    if (!cutByDeadline) this.#stats.increment('uncoordinatedFetches');
    return this.#miss(slot, call, undefined, staleIfError?.entry, state?.seenFreshMs, state?.entry ?? held?.entry);
  }

  /**
   * The value stored is as this environment holds it, fresh, and ends soon: the first environment to come back
   * for it refreshes it ahead of its expiry (it takes the lease, small, eventually consistent read first); the
   * others answer it and look again shortly, by when it has been refreshed.
   */
  async #refreshAhead(slot: KnownSlot, state: ItemState, policy: RefreshPolicy, lease: Required<LeaseOptions>, call: CallBudget): Promise<Resolution> {
    const entry = state.entry!;
    const keep = (untilMs: number, reason: DeferReason): Resolution => {
      this.#store.defer(slot, Math.min(untilMs, entry.freshUntilMs), reason);
      return this.#hit(entry, 'dynamo', false, state.decoded);
    };
    const seen = await this.#store.readLease(slot, call);
    const now = Date.now();
    if (!seen.ok) return keep(now + this.#deferMs(undefined, policy), 'failing');
    const current = seen.lease;
    if (current !== undefined && current.forFreshMs >= state.seenFreshMs) {
      if (current.untilMs > now) return keep(now + this.#deferMs(undefined, policy), 'refreshing');
      if (current.failed === true && (current.retryAtMs ?? 0) > now) return keep(current.retryAtMs! + jittered(FAILED_REFRESH_RETRY_MS), 'failing');
    }
    const owner = this.#newOwner();
    const attempt = await this.#store.acquireLease(slot, { owner, nowMs: now, untilMs: now + lease.ttlMs, forFreshMs: state.seenFreshMs }, call);
    if (!attempt.ok || !attempt.acquired) return keep(Date.now() + this.#deferMs(undefined, policy), 'refreshing');
    this.#stats.increment('earlyRefreshes');
    return { found: false, turn: { slot, owner, fallback: entry, notFresherThanMs: entry.freshUntilMs, startedAt: now, call, previous: entry } };
  }

  /** DynamoDB could not be read: answer what memory holds (within the windows), wait if it is only under pressure, or fetch. */
  #dynamoFailed(slot: KnownSlot, held: Held | undefined, failure: FailureKind, policy: RefreshPolicy, call: CallBudget, since: number, from: ResolveFrom): Promise<Resolution> | Resolution {
    // The caller left (its getOrSet rethrows).
    if (failure === 'aborted') return this.#miss(slot, call, undefined, undefined, undefined);
    const kept = this.#pressure(slot, undefined, held, policy);
    if (kept !== undefined) return kept;
    // No time to wait: the fetcher gets the time left.
    if (failure === 'deadline') return this.#miss(slot, call, undefined, undefined, undefined, held?.entry);
    if (policy.lease !== false && (failure === 'throttle' || failure === 'timeout')) return this.#leaseOrWait(slot, undefined, undefined, held, policy, policy.lease, call, since, from);
    return this.#uncoordinated(slot, call, policy, undefined, undefined, held?.entry, `DynamoDB failed (${failure})`);
  }

  /**
   * DynamoDB failed to answer (throttled, slow, down): what memory holds while fresh, or the newest value (held or
   * read) within either stale window, answered, and answered from memory for a while without asking again. What
   * memory holds under tags is judged by their states last known here, even when due for a reread: DynamoDB
   * cannot say more now (a tag's state it could not give included), and the bound on seeing an invalidation holds
   * as long as DynamoDB answers. A value known to be gone is no longer in memory, nor shown valid by a state.
   */
  #pressure(slot: KnownSlot, state: ItemState | undefined, held: Held | undefined, policy: RefreshPolicy): Resolution | undefined {
    const now = Date.now();
    held ??= this.#store.held(slot, now, true);
    let kept: Resolution | undefined;
    if (held !== undefined && isFresh(held.entry, now)) kept = this.#hit(held.entry, 'memory', false);
    else {
      const stale = newest(now, Math.max(policy.staleWhileRevalidateSeconds, policy.staleIfErrorSeconds), state, held);
      if (stale === undefined) return undefined;
      this.#stats.increment('staleIfError');
      kept = this.#hit(stale.entry, stale.source, true, undefined, true);
    }
    this.#store.defer(slot, now + this.#deferMs(held, policy), 'failing');
    return kept;
  }

  /** What memory holds, when it may answer for `reason`: fresh, or stale within the window the reason allows. */
  #fromHeld(held: Held | undefined, now: number, policy: RefreshPolicy, reason: DeferReason): Resolution | undefined {
    if (!answers(held, now, policy, reason)) return undefined;
    if (isFresh(held!.entry, now)) return this.#hit(held!.entry, 'memory', false);
    if (reason === 'failing') this.#stats.increment('staleIfError');
    return this.#hit(held!.entry, 'memory', true, undefined, reason === 'failing');
  }

  /** Answers a value within `staleIfErrorSeconds` because a refresh failed, and keeps answering it from memory until the fleet tries again. */
  #staleIfError(slot: KnownSlot, fallback: Fallback, retryAtMs: number | undefined): Resolution {
    this.#stats.increment('staleIfError');
    const until = retryAtMs === undefined ? Date.now() + FAILED_REFRESH_RETRY_MS : retryAtMs;
    this.#store.defer(slot, until + jittered(FAILED_REFRESH_RETRY_MS), 'failing');
    return this.#hit(fallback.entry, fallback.source, true, undefined, true);
  }

  /** The longer time budget a coordinating request starts from while DynamoDB was slow lately, if it was. */
  #patience(now: number): number | undefined {
    return this.#slow !== undefined && now < this.#slow.untilMs ? this.#slow.budgetMs : undefined;
  }

  /** How long to put a recheck off: from `lease.maxPollMs`, doubling for each time in a row DynamoDB failed, jittered. */
  #deferMs(held: Held | undefined, policy: RefreshPolicy): number {
    const base = policy.lease === false ? DEFER_BASE_MS : policy.lease.maxPollMs;
    return jittered(Math.min(base * 2 ** (held?.deferrals ?? 0), MAX_DEFER_MS));
  }

  /** A fetch without the lease (although it is on, when counted): DynamoDB cannot coordinate it. Logged. */
  #uncoordinated(slot: Slot, call: CallBudget, policy: RefreshPolicy, fallback: CacheEntry | undefined, notFresherThanMs: number | undefined, previous: CacheEntry | undefined, why: string): Resolution {
    if (policy.lease !== false) {
      this.#stats.increment('uncoordinatedFetches');
      this.#logger.warn(`dynamo-cache: fetching without the refresh lease: ${why}`, { key: slot.storageKey ?? slot.memoryKey });
    }
    return this.#miss(slot, call, undefined, fallback, notFresherThanMs, previous);
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
    return { found: false, turn: { slot, owner, fallback: entry, notFresherThanMs: entry.freshUntilMs, startedAt: now, call, previous: entry } };
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

  #miss(slot: Slot, call: CallBudget, owner: string | undefined, fallback: CacheEntry | undefined, notFresherThanMs: number | undefined, previous?: CacheEntry): Resolution {
    this.#stats.increment('misses');
    return { found: false, turn: { slot, owner, fallback, notFresherThanMs, startedAt: Date.now(), call, previous } };
  }
}

/** Whether what memory holds may answer for `reason`: fresh, or stale within the window the reason allows. */
function answers(held: Held | undefined, now: number, policy: RefreshPolicy, reason: DeferReason): boolean {
  if (held === undefined) return false;
  const window = reason === 'refreshing' ? policy.staleWhileRevalidateSeconds : Math.max(policy.staleWhileRevalidateSeconds, policy.staleIfErrorSeconds);
  return isFresh(held.entry, now) || withinStaleWindow(held.entry, now, window);
}

/** The newest of the value read and the value held in memory that is within `seconds` past its freshness. */
function newest(now: number, seconds: number, state: ItemState | undefined, held: Held | undefined): Fallback | undefined {
  const read = state?.entry !== undefined && withinStaleWindow(state.entry, now, seconds) ? state.entry : undefined;
  const kept = held !== undefined && withinStaleWindow(held.entry, now, seconds) ? held.entry : undefined;
  if (kept !== undefined && (read === undefined || kept.freshUntilMs > read.freshUntilMs)) return { entry: kept, source: 'memory' };
  return read === undefined ? undefined : { entry: read, source: 'dynamo' };
}

function hasStorageKey(slot: Slot): slot is KnownSlot {
  return slot.storageKey !== undefined;
}
