import type { CacheLogger } from '../observability/logger.ts';
import type { DynamoStore } from './dynamo-store.ts';
import { UNBOUNDED, type CallBudget } from '../resilience/dynamo-guard.ts';
import { META } from './item.ts';

const FAILED_READ_BACKOFF_MS = 1000;

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
 * is older than `refreshMs`, which bounds how long another environment's flush goes unseen here.
 */
export class NamespaceGeneration {
  readonly #dynamo: DynamoStore;
  readonly #metaKey: string;
  readonly #refreshMs: number;
  readonly #logger: CacheLogger;
  #known: number | undefined;
  #checkedAt = 0;
  /** After a failed read, the next attempt waits until then: one failure costs one time budget, not one per call. */
  #retryAt = 0;
  #reading: Promise<number | undefined> | undefined;

  constructor(dynamo: DynamoStore, metaKey: string, refreshMs: number, logger: CacheLogger) {
    this.#dynamo = dynamo;
    this.#metaKey = metaKey;
    this.#refreshMs = refreshMs;
    this.#logger = logger;
  }

  /**
   * The current generation, reread (once for all concurrent callers) when the known one is older than
   * `refreshMs`. When the read fails (DynamoDB failing, already logged), the caller gets `undefined` and
   * should treat DynamoDB as unavailable rather than spend a second time budget; for the next second the
   * generation known so far is used (`undefined` if none ever was) without asking again.
   */
  current(caller: GenerationCaller, call: CallBudget = UNBOUNDED): Promise<number | undefined> | number | undefined {
    const now = Date.now();
    if (this.#known !== undefined && now - this.#checkedAt < this.#refreshMs) return this.#known;
    if (now < this.#retryAt) return this.#known;
    // Shared by every concurrent caller, under the first one's budget.
    this.#reading ??= this.#read(caller, call).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /** Starts a new generation; resolves it, or `undefined` when DynamoDB failed (logged). */
  async bump(): Promise<number | undefined> {
    const outcome = await this.#dynamo.bumpGeneration(this.#metaKey);
    if (!outcome.ok || !Number.isInteger(outcome.value)) return undefined;
    this.#remember(outcome.value);
    return outcome.value;
  }

  async #read(caller: GenerationCaller, call: CallBudget): Promise<number | undefined> {
    // Consistent, so a flush is seen by the next read anywhere, not eventually. A failure is logged under the
    // caller's operation and key: that is what the user did, the metadata item is only how.
    const outcome = await this.#dynamo.get(this.#metaKey, { consistent: true, detail: { ...caller, reading: `namespace generation (${this.#metaKey})` }, call });
    if (!outcome.ok) {
      // A caller's deadline or abort says nothing about DynamoDB: the next caller may read at once.
      if (outcome.kind !== 'deadline' && outcome.kind !== 'aborted') this.#retryAt = Date.now() + FAILED_READ_BACKOFF_MS;
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
    this.#checkedAt = Date.now();
    return this.#known;
  }
}
