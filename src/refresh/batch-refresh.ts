import { encodeValue, type Payload } from '../codec/value-codec.ts';
import { InvalidValueError } from '../errors.ts';
import { sourceOf, type CacheSource } from '../resilience/call-options.ts';
import type { CallBudget } from '../resilience/dynamo-guard.ts';
import { decodeEntry, take } from '../storage/entry.ts';
import type { Slot } from '../storage/keys.ts';
import type { LeaseReadResult, ReadResult, TwoTierStore } from '../storage/two-tier-store.ts';
import type { StatsRecorder } from '../observability/stats.ts';
import type { RefreshCoordinator, RefreshPolicy, Resolution, Turn } from './coordinator.ts';
import { ManyFetchContext, type FetchManyContext, type TtlSeconds } from './fetch-context.ts';
import type { Tagging } from '../invalidation/tag-states.ts';

/** What `fetchMany` resolves: the value of each key it found, as a `Map` or a plain object; a key left out is "not found". */
export type FetchedValues<T> = ReadonlyMap<string, T | undefined> | Readonly<Record<string, T | undefined>>;

/** A `getOrSetMany` fetch: called with the keys to fetch and a {@link FetchManyContext}. */
export type FetchMany<T, TPrevious = T> = (keys: string[], context: FetchManyContext<TPrevious>) => FetchedValues<T> | Promise<FetchedValues<T>>;

/** One key of a batch: the caller's key and where it lives. */
export interface BatchKey {
  readonly key: string;
  readonly slot: Slot;
  /** When the slot's namespace generation is unknown, waits for it under the batch's budget, as `getOrSet` does (see `ResolveFrom.settle`). */
  readonly settle?: ((untilMs: number, call: CallBudget) => Promise<Slot>) | undefined;
}

/** One key's answer: its value (`undefined`, `found: false`, for "not found"), and where it came from. */
export interface KeyAnswer {
  readonly value: unknown;
  readonly found: boolean;
  readonly source: CacheSource;
}

/** What a batch needs of the cache. */
export interface BatchSettings {
  readonly store: TwoTierStore;
  readonly refresh: RefreshCoordinator;
  readonly stats: StatsRecorder;
  /** `deadlineMarginMs`: the time before the deadline that belongs to the fetch. */
  readonly marginMs: number;
  /** Ends a fetch's turn, as `getOrSet` does (see `DynamoCache`): stored under the policy `decide` gives, or not (`undefined`). */
  readonly endFetch: (turn: Turn, payload: Payload | undefined, decide: (() => RefreshPolicy) | undefined, tagged: Tagging | undefined) => Promise<boolean>;
}

/** How one key resolved: an answer or a turn, or the error that ended its resolution (the caller's abort). */
type Outcome = { readonly key: string; readonly resolution: Resolution } | { readonly key: string; readonly error: unknown };

/**
 * `getOrSetMany` for the keys the memory tier did not answer: one BatchGetItem read for all of them, then, per
 * key, what `getOrSet` does after its read (the coordinator's `resolve`): an answer (fresh, or stale while
 * another environment refreshes), a turn with the refresh lease won (one conditional write of the key's own
 * lease item), a turn without it (no lease, DynamoDB failing), or a wait for another environment's refresh.
 *
 * The keys this environment is to fetch are fetched together, in one `fetchMany` call, as soon as every key has
 * either resolved or started waiting: waiting for other environments first could deadlock two batches that
 * each hold leases the other waits for. A wait that ends without the other environment's value (its fetch
 * failed, or it gave its lease back, or the lease ran out, or the wait reached `lease.waitMs` or the deadline)
 * makes the key this environment's to fetch, with the keys whose waits ended in the same poll round, as soon as
 * the keys still waiting have polled again: holding a lease won while waiting until every other wait is over
 * could deadlock too. The waiting keys poll
 * together (see {@link PollRounds}). `fetchMany` is given its keys in the order they were asked for.
 */
export class BatchRefresh {
  readonly #s: BatchSettings;

  constructor(settings: BatchSettings) {
    this.#s = settings;
  }

  /** The answers of `keys` (distinct), by key. */
  async run<T>(keys: readonly BatchKey[], fetchMany: FetchMany<T, any>, policy: RefreshPolicy, ttl: TtlSeconds<T> | undefined, caller: CallBudget, tagged?: Tagging): Promise<Map<string, KeyAnswer>> {
    // Once the call has failed, the waits still running end, and the keys they would hand this environment go back.
    const stop = new AbortController();
    const call: CallBudget = { signal: caller.signal === undefined ? stop.signal : AbortSignal.any([caller.signal, stop.signal]), untilMs: caller.untilMs };
    try {
      return await this.#run(keys, fetchMany, policy, ttl, call, tagged);
    } catch (error) {
      stop.abort(error);
      throw error;
    }
  }

  async #run<T>(keys: readonly BatchKey[], fetchMany: FetchMany<T, any>, policy: RefreshPolicy, ttl: TtlSeconds<T> | undefined, call: CallBudget, tagged: Tagging | undefined): Promise<Map<string, KeyAnswer>> {
    const reads = await this.#read(keys, call);
    // A wait that runs out is the key's turn to fetch: per-key outcomes never fail the whole call.
    const batchPolicy: RefreshPolicy = { ...policy, earlyRefresh: false, lease: policy.lease === false ? false : { ...policy.lease, onWaitTimeout: 'fetch' } };
    const order = new Map(keys.map(({ key }, index) => [key, index]));
    const inOrder = (outcomes: Outcome[]) => outcomes.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
    const fetchNow = (outcomes: Outcome[]) => this.#fetch(inOrder(outcomes), fetchMany, policy, ttl, call, tagged);
    const settled: Outcome[] = [];
    const waiting: Array<Promise<Outcome>> = [];
    // Keys whose wait ended, gathered until every key still waiting has polled again (or none is left), then
    // answered, or fetched together.
    const afterWaits: Array<Promise<Map<string, KeyAnswer>>> = [];
    let ended: Outcome[] = [];
    const rounds = new PollRounds(this.#s.store, call, () => {
      if (ended.length === 0) return;
      const fetched = fetchNow(ended);
      ended = [];
      // Awaited below, unless the call failed first (its error is then the one thrown).
      fetched.catch(() => {});
      afterWaits.push(fetched);
    });
    await new Promise<void>((everyKeyPlaced) => {
      let unplaced = keys.length;
      const placed = () => --unplaced === 0 && everyKeyPlaced();
      if (unplaced === 0) everyKeyPlaced();
      for (const { key, slot, settle: settleGeneration } of keys) {
        let waits = false;
        const read = slot.storageKey === undefined ? undefined : reads.get(slot.storageKey);
        // Made before `resolve` runs: it may start waiting (and call onWait) before its first await.
        let settle!: (outcome: Outcome) => void;
        const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
        this.#s.refresh
          .resolve(slot, batchPolicy, call, {
            read,
            onWait: () => {
              waits = true;
              rounds.join();
              waiting.push(outcome);
              placed();
            },
            poll: rounds.poll,
            settle: settleGeneration === undefined ? undefined : (untilMs) => settleGeneration(untilMs, call),
          })
          .then(
            (resolution) => settle({ key, resolution }),
            (error: unknown) => settle({ key, error }),
          );
        void outcome.then((result) => {
          if (waits) {
            ended.push(result);
            return rounds.leave();
          }
          settled.push(result);
          placed();
        });
      }
    });
    const [now] = await Promise.all([fetchNow(settled), Promise.all(waiting)]);
    const later = await Promise.all(afterWaits);
    return new Map([now, ...later].flatMap((answers) => [...answers]));
  }

  /** The keys' items, read together (keys without a storage key are left out: the namespace generation is unknown). */
  async #read(keys: readonly BatchKey[], call: CallBudget): Promise<Map<string, ReadResult>> {
    const known = keys.flatMap(({ slot }) => (slot.storageKey === undefined ? [] : [slot as Slot & { storageKey: string }]));
    return known.length === 0 ? new Map() : this.#s.store.readEach(known, call);
  }

  /**
   * Answers the resolved keys, and fetches those that are this environment's turn in one `fetchMany` call. If it
   * throws, each key answers its stale value within `staleIfErrorSeconds` if every one has one; else the error
   * is thrown.
   * @throws InvalidValueError when `fetchMany` resolves something other than a Map or a plain object, or a value
   * that cannot be stored (the other keys' values are stored); the `InvalidOptionsError` of a bad argument to the
   * context; the caller's abort reason.
   */
  async #fetch<T>(outcomes: readonly Outcome[], fetchMany: FetchMany<T, any>, policy: RefreshPolicy, ttl: TtlSeconds<T> | undefined, call: CallBudget, tagged: Tagging | undefined): Promise<Map<string, KeyAnswer>> {
    const answers = new Map<string, KeyAnswer>();
    const turns: Array<{ key: string; turn: Turn }> = [];
    let failure: { error: unknown } | undefined;
    for (const outcome of outcomes) {
      if ('error' in outcome) failure ??= { error: outcome.error };
      else if (!outcome.resolution.found) turns.push({ key: outcome.key, turn: outcome.resolution.turn });
      else {
        const { entry, decoded } = outcome.resolution;
        const taken = take(decoded);
        answers.set(outcome.key, { value: taken !== undefined ? taken.value : decodeEntry(entry), found: entry.payload !== undefined, source: sourceOf(outcome.resolution) });
      }
    }
    if (failure === undefined && call.signal?.aborted) failure = { error: call.signal.reason };
    if (failure !== undefined) {
      // The caller gave up: no fetch, and the leases won go back at once.
      await Promise.all(turns.map(({ turn }) => this.#s.refresh.abandon(turn)));
      throw failure.error;
    }
    if (turns.length === 0) return answers;
    this.#s.stats.increment('fetches', turns.length);
    const context = new ManyFetchContext<unknown>(new Map(turns.map(({ key, turn }) => [key, turn.previous])), call, this.#s.marginMs);
    let values: ReadonlyMap<string, unknown>;
    try {
      values = valuesOf(await fetchMany(turns.map(({ key }) => key), context));
    } catch (error) {
      // Bad input (what fetchMany resolved, or an argument the context refused) is a bug in the caller's code, not
      // the upstream failing: no stale answers, and the leases go back unmarked.
      if (error instanceof InvalidValueError || context.refused(error)) {
        await Promise.all(turns.map(({ turn }) => this.#s.refresh.abandon(turn)));
        throw error;
      }
      const fallbacks = await Promise.all(turns.map(({ turn }) => this.#s.refresh.fail(turn, error)));
      if (fallbacks.some((fallback) => fallback === undefined)) throw error;
      fallbacks.forEach((entry, index) => answers.set(turns[index]!.key, { value: decodeEntry(entry!), found: entry!.payload !== undefined, source: 'stale' }));
      return answers;
    }
    let unstorable: InvalidValueError | undefined;
    await Promise.all(
      turns.map(async ({ key, turn }) => {
        const value = values.get(key) as T | undefined;
        let payload: Payload | undefined;
        try {
          payload = value === undefined ? undefined : encodeValue(value);
        } catch (error) {
          unstorable ??= new InvalidValueError(`getOrSetMany: the value fetched for ${JSON.stringify(key)} cannot be stored: ${(error as Error).message}`, { cause: error });
          await this.#s.refresh.abandon(turn);
          return;
        }
        // The fetched value itself is the answer (the cache keeps only its encoded copy).
        answers.set(key, { value, found: value !== undefined, source: 'fetcher' });
        await this.#s.endFetch(turn, payload, context.skipped(key) ? undefined : () => context.policyFor(policy, key, value, ttl), tagged);
      }),
    );
    if (unstorable !== undefined) throw unstorable;
    return answers;
  }
}

/**
 * The polls of a batch's waiting keys, sent together: a key's poll joins the round, which is sent (one strongly
 * consistent BatchGetItem per 50 keys) once every key still waiting has asked. A batch waiting on 40 keys then
 * loads the table as one waiter does, not as 40: the fleet's polls must not starve the writes they wait for.
 * Each key still decides for itself what its poll means (the coordinator's wait). `quiet` is called at that
 * moment, and when no key is left waiting: every wait the last round ended has then settled.
 */
class PollRounds {
  readonly #store: TwoTierStore;
  /** The batch's budget, which every key's wait runs under. */
  readonly #call: CallBudget;
  readonly #quiet: () => void;
  #waiting = 0;
  #queued: Array<{ slot: Slot & { storageKey: string }; resolve: (result: LeaseReadResult) => void; reject: (error: unknown) => void }> = [];

  constructor(store: TwoTierStore, call: CallBudget, quiet: () => void) {
    this.#store = store;
    this.#call = call;
    this.#quiet = quiet;
  }

  /** A key started waiting. */
  join(): void {
    this.#waiting++;
  }

  /** A waiting key is answered (or gave up): the others no longer wait for its poll. */
  leave(): void {
    this.#waiting--;
    this.#sendIfComplete();
  }

  /** A waiting key's poll: resolves when its round has been read. */
  readonly poll = (slot: Slot & { storageKey: string }): Promise<LeaseReadResult> =>
    new Promise((resolve, reject) => {
      this.#queued.push({ slot, resolve, reject });
      this.#sendIfComplete();
    });

  #sendIfComplete(): void {
    if (this.#queued.length < this.#waiting) return;
    this.#quiet();
    if (this.#queued.length === 0) return;
    const round = this.#queued;
    this.#queued = [];
    this.#store.readEachWithLease(
      round.map(({ slot }) => slot),
      this.#call,
    ).then(
      (results) => round.forEach(({ slot, resolve }) => resolve(results.get(slot.storageKey)!)),
      (error: unknown) => round.forEach(({ reject }) => reject(error)),
    );
  }
}

/** The values `fetchMany` resolved, by key. */
export function valuesOf(fetched: unknown): ReadonlyMap<string, unknown> {
  if (fetched instanceof Map) return fetched;
  const prototype = typeof fetched === 'object' && fetched !== null ? Object.getPrototypeOf(fetched) : undefined;
  if (prototype === Object.prototype || prototype === null) return new Map(Object.entries(fetched as object));
  throw new InvalidValueError('fetchMany must resolve a Map or a plain object of key to value (a key left out is "not found")');
}
