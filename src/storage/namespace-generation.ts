import type { CacheLogger } from '../observability/logger.ts';
import type { DynamoStore } from './dynamo-store.ts';
import { jittered, pauseFor } from '../resilience/abort.ts';
import { UNBOUNDED, morePatience, type CallBudget, type FailureKind } from '../resilience/dynamo-guard.ts';
import { META } from './item.ts';
import { RECHECK_SPREAD } from './memory-tier.ts';

/** After a failed read DynamoDB is not asked again for this long (a failure that says it is down or refuses). */
const FAILED_READ_BACKOFF_MS = 1000;
/** After a throttled or timed-out read: the first pause before asking again, doubled (with jitter) up to the above. */
const PRESSURE_BACKOFF_MS = 100;

/** The caller operation that needed the generation, named in the warning if reading it fails. */
export interface GenerationCaller {
  readonly operation: string;
  /** The caller's key as logged elsewhere (its storage key in generation 0: hashed with `hashKeys`). */
  readonly key: string;
}

/**
 * The namespace's generation: a counter in one metadata item, folded into every stored key. `clear()`
 * bumps it with one atomic write, so every old item becomes unreachable at once (DynamoDB's TTL removes
 * them later); there is no scan and no per-item delete. Each environment rereads the counter when its copy
 * is older than `refreshMs` (less up to a tenth, at random, so a fleet started together does not reread it
 * together), which bounds how long another environment's flush goes unseen here.
 *
 * The read is eventually consistent (half a read unit: every environment of a fleet reads this one item at its
 * cold start). A flush is then seen by a reread within DynamoDB's replication lag, usually well under a second,
 * inside the `refreshMs` bound; the environment that flushes knows its new generation at once.
 */
export class NamespaceGeneration {
  readonly #dynamo: DynamoStore;
  readonly #metaKey: string;
  readonly #refreshMs: number;
  readonly #logger: CacheLogger;
  /** The cache's time budget of one operation (`timeoutMs`). */
  readonly #timeoutMs: number;
  #known: number | undefined;
  #rereadAt = 0;
  /** After a failed read, the next attempt waits until then: one failure costs one time budget, not one per call. */
  #retryAt = 0;
  /** Why the last read failed, while the generation is unknown; reads under pressure in a row, for the backoff. */
  #failure: FailureKind | undefined;
  #pressured = 0;
  /** The time budget of the last read that timed out (`undefined`: none did), doubled for the next. */
  #patienceMs: number | undefined;
  #reading: Promise<number | undefined> | undefined;

  constructor(dynamo: DynamoStore, metaKey: string, refreshMs: number, logger: CacheLogger, timeoutMs: number) {
    this.#dynamo = dynamo;
    this.#timeoutMs = timeoutMs;
    this.#metaKey = metaKey;
    this.#refreshMs = refreshMs;
    this.#logger = logger;
  }

  /**
   * The newest generation this environment has known (`undefined`: none yet). It only moves forward: a reread
   * that fails keeps it. While the current generation cannot be read, the memory tier still judges its entries
   * by it, so that a flush seen here is never undone by a throttled reread.
   */
  get lastKnown(): number | undefined {
    return this.#known;
  }

  /**
   * The current generation, reread (once for all concurrent callers) when the known one is due. When the read
   * fails (DynamoDB failing, already logged), the caller gets `undefined` and should treat DynamoDB as
   * unavailable rather than spend a second time budget (memory goes by `lastKnown`); for a while (up to a second)
   * the generation known so far is used (`undefined` if none ever was) without asking again.
   */
  current(caller: GenerationCaller, call: CallBudget = UNBOUNDED): Promise<number | undefined> | number | undefined {
    const now = Date.now();
    if (this.#known !== undefined && now < this.#rereadAt) return this.#known;
    if (now < this.#retryAt) return this.#known;
    // Shared by every concurrent caller, under the first one's budget.
    this.#reading ??= this.#read(caller, call).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /**
   * The generation for a caller that coordinates through DynamoDB (the refresh lease): when it is unknown because
   * DynamoDB throttled or was slow, the read is tried again, with backoff, until `untilMs` (and the call's
   * deadline): pressure on DynamoDB is a reason to wait, not to fetch without coordination. `undefined` when it
   * is still unknown, or DynamoDB is down or refuses.
   */
  async settle(caller: GenerationCaller, call: CallBudget, untilMs: number): Promise<number | undefined> {
    const endMs = Math.min(untilMs, call.untilMs ?? Number.POSITIVE_INFINITY);
    for (;;) {
      const known = await this.current(caller, call);
      if (known !== undefined || (this.#failure !== 'throttle' && this.#failure !== 'timeout')) return known;
      const pauseMs = Math.min(endMs, this.#retryAt) - Date.now();
      if (Date.now() >= endMs) return undefined;
      await pauseFor(Math.max(1, pauseMs), call.signal);
    }
  }

  /** Starts a new generation; resolves it, or `undefined` when DynamoDB failed (logged). */
  async bump(): Promise<number | undefined> {
    const outcome = await this.#dynamo.bumpGeneration(this.#metaKey);
    if (!outcome.ok || !Number.isInteger(outcome.value)) return undefined;
    this.#remember(outcome.value);
    return outcome.value;
  }

  async #read(caller: GenerationCaller, call: CallBudget): Promise<number | undefined> {
    // A failure is logged under the caller's operation and key: that is what the user did, the metadata item is only how.
    // After a timeout, the next read is given twice the time budget (doubling): a slow DynamoDB is waited for.
    const patient = this.#failure === 'timeout' ? { ...call, timeoutMs: morePatience(this.#patienceMs, this.#timeoutMs) } : call;
    const outcome = await this.#dynamo.get(this.#metaKey, { detail: { ...caller, reading: `namespace generation (${this.#metaKey})` }, call: patient });
    if (!outcome.ok) {
      // A caller's deadline or abort says nothing about DynamoDB: the next caller may read at once.
      if (outcome.kind === 'deadline' || outcome.kind === 'aborted') return undefined;
      this.#patienceMs = outcome.kind === 'timeout' ? (patient.timeoutMs ?? this.#timeoutMs) : undefined;
      this.#failure = outcome.kind;
      const pressure = outcome.kind === 'throttle' || outcome.kind === 'timeout';
      this.#pressured = pressure ? this.#pressured + 1 : 0;
      this.#retryAt = Date.now() + (pressure ? jittered(Math.min(PRESSURE_BACKOFF_MS * 2 ** this.#pressured, FAILED_READ_BACKOFF_MS)) : FAILED_READ_BACKOFF_MS);
      return undefined;
    }
    const stored = Number(outcome.value?.[META.namespaceGeneration]?.N ?? 0);
    if (!Number.isInteger(stored) || stored < 0) {
      this.#logger.warn('dynamo-cache: namespace metadata item is unreadable; keeping the generation known so far', { key: this.#metaKey });
      return this.#remember(this.#known ?? 0);
    }
    return this.#remember(stored);
  }

  #remember(generation: number): number {
    // Generations only grow: a lagging answer never takes a flush back.
    this.#known = Math.max(this.#known ?? 0, generation);
    this.#rereadAt = Date.now() + this.#refreshMs * (1 - RECHECK_SPREAD * Math.random());
    this.#failure = undefined;
    this.#pressured = 0;
    this.#patienceMs = undefined;
    return this.#known;
  }
}
