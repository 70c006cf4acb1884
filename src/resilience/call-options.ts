import { InvalidOptionsError } from '../errors.ts';
import { UNBOUNDED, type CallBudget } from './dynamo-guard.ts';

/** Anything that says how much time is left: a Lambda `context` fits as it is. */
export interface DeadlineSource {
  getRemainingTimeInMillis(): number;
}

/** What bounds one call: every method that may wait or call DynamoDB takes these. */
export interface CallOptions {
  /**
   * Cancels the call: its DynamoDB requests and any wait for another caller's refresh end at once, and the
   * call rejects with the signal's reason. Middy passes one to the handler (`(event, context, { signal })`).
   */
  signal?: AbortSignal | undefined;
  /**
   * When the caller's time runs out: an epoch time in ms, or a Lambda `context` (its
   * `getRemainingTimeInMillis()`). The cache's own work (DynamoDB requests, waiting on another caller's
   * refresh) ends `deadlineMarginMs` before it, so the fetcher or the handler still has time to run.
   */
  deadline?: number | DeadlineSource | undefined;
}

/**
 * Where an answer came from: `memory` or `dynamodb` (a fresh value from the cache), `stale` (a value past
 * its TTL, while another caller refreshes it or because the refresh failed), `fetcher` (the fetcher ran: a
 * miss), `none` (a miss of `get`).
 */
export type CacheSource = 'memory' | 'dynamodb' | 'stale' | 'fetcher' | 'none';

/** What `onResult` is told about one call. */
export interface CacheResult {
  /** The caller's key. */
  readonly key: string;
  readonly source: CacheSource;
  /** Whether the answer came from the cache (`memory`, `dynamodb` or `stale`). */
  readonly fromCache: boolean;
}

/** The per-call hook that says where an answer came from. */
export interface ResultOptions {
  /**
   * Called once the call has its answer, with where it came from (for metrics, logs, a response header):
   * the cache-hit signal that plain values cannot carry. Called synchronously, before the call resolves.
   */
  onResult?: ((result: CacheResult) => void) | undefined;
}

/** Per-call option names shared by every method that may call DynamoDB. */
export const CALL_OPTION_NAMES = ['signal', 'deadline'] as const;

/** The budget of one call: the caller's signal, and its deadline less the margin kept for the caller. */
export function callBudget(options: CallOptions, marginMs: number): CallBudget {
  const { signal, deadline } = options;
  if (signal === undefined && deadline === undefined) return UNBOUNDED;
  if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function')) {
    throw new InvalidOptionsError('signal must be an AbortSignal');
  }
  return { signal, untilMs: deadline === undefined ? undefined : deadlineMs(deadline) - marginMs };
}

/** Where an answer found in the cache came from, as `onResult` names it. */
export function sourceOf(found: { readonly stale: boolean; readonly source: 'memory' | 'dynamo' }): CacheSource {
  return found.stale ? 'stale' : found.source === 'memory' ? 'memory' : 'dynamodb';
}

/** Calls `onResult`, when given, with where the answer for `key` came from. */
export function reportResult(options: ResultOptions, key: string, source: CacheSource): void {
  options.onResult?.({ key, source, fromCache: source === 'memory' || source === 'dynamodb' || source === 'stale' });
}

/** Checks the `onResult` option. */
export function assertResultHook(options: ResultOptions): void {
  if (options.onResult !== undefined && typeof options.onResult !== 'function') throw new InvalidOptionsError('onResult must be a function');
}

function deadlineMs(deadline: number | DeadlineSource): number {
  if (typeof deadline === 'number') {
    if (!Number.isFinite(deadline)) throw new InvalidOptionsError(`deadline must be an epoch time in ms or a Lambda context, got ${deadline}`);
    return deadline;
  }
  if (typeof deadline?.getRemainingTimeInMillis !== 'function') throw new InvalidOptionsError('deadline must be an epoch time in ms or a Lambda context');
  const remaining = deadline.getRemainingTimeInMillis();
  // Outside Lambda (tests, local runs) a context may say nothing useful: no deadline then.
  return Number.isFinite(remaining) ? Date.now() + remaining : Number.POSITIVE_INFINITY;
}
