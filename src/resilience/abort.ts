import { setTimeout as sleep } from 'node:timers/promises';
import type { CallBudget } from './dynamo-guard.ts';

/**
 * A caller's `AbortSignal`, as the AWS SDK and `fetch` accept it: the standard one, or any object with the
 * same `aborted`, `reason` and event listener methods.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener?(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener?(type: 'abort', listener: () => void): void;
}

/** The error a call rejects with when its caller aborts it: an `AbortError`, as the AWS SDK's own, with the signal's reason as `cause`. */
export function abortError(signal: AbortSignalLike): Error {
  const error = new Error('Request aborted', { cause: signal.reason });
  error.name = 'AbortError';
  return error;
}

/**
 * Waits for `work`, but no longer than the caller's `signal` allows: once it aborts, the wait rejects with
 * an {@link abortError}, and whatever `work` later resolves is handed to `cleanUp` (a refresh turn to give
 * back), so nothing is left holding the cache's lease.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignalLike | undefined, cleanUp: (late: T) => unknown): Promise<T> {
  if (signal === undefined || typeof signal.addEventListener !== 'function') return work;
  const late = (value: T) => void Promise.resolve(value).then(cleanUp).catch(() => {});
  if (signal.aborted) {
    work.then(late, () => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      reject(abortError(signal));
    };
    signal.addEventListener!('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener?.('abort', onAbort);
        if (aborted) late(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener?.('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Runs `start` under the caller's `signal`. A standard `AbortSignal` is handed to the work itself, so the
 * cache's own requests and lease polling stop with it; any other signal-like object can only be raced
 * ({@link untilAborted}). Either way an abort rejects with an {@link abortError}.
 */
export function underSignal<T>(signal: AbortSignalLike | undefined, start: (signal: AbortSignal | undefined) => Promise<T>, cleanUp: (late: T) => unknown): Promise<T> {
  if (!(signal instanceof AbortSignal)) return untilAborted(start(undefined), signal, cleanUp);
  return start(signal).catch((error: unknown) => {
    throw signal.aborted ? abortError(signal) : error;
  });
}

/**
 * Waits for `work` that other callers share (a read one of them started), no longer than this caller's deadline
 * (`untilMs`) and signal allow: resolves `'deadline'` or `'aborted'` when one of them ends the wait first. The
 * work goes on for the others.
 */
export function withinCall<T>(work: Promise<T>, call: CallBudget): Promise<T | 'deadline' | 'aborted'> {
  const { signal, untilMs } = call;
  const bounded = untilMs !== undefined && Number.isFinite(untilMs);
  if (signal === undefined && !bounded) return work;
  if (signal?.aborted) return Promise.resolve('aborted');
  if (bounded && untilMs <= Date.now()) return Promise.resolve('deadline');
  return new Promise((resolve, reject) => {
    const onAbort = () => end('aborted');
    const timer = bounded ? setTimeout(() => end('deadline'), untilMs - Date.now()) : undefined;
    const stop = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const end = (outcome: T | 'deadline' | 'aborted') => {
      stop();
      resolve(outcome);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(end, (error: unknown) => {
      stop();
      reject(error);
    });
  });
}

/** Whether the caller's deadline has passed or its signal aborted. */
export function callEnded(call: CallBudget): boolean {
  return call.signal?.aborted === true || (call.untilMs !== undefined && call.untilMs <= Date.now());
}

/** Sleeps `ms`; a caller's abort ends it at once, rejecting with the caller's reason. */
export async function pauseFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal === undefined ? undefined : { signal });
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}

/** A pause of about `ms`, drawn between half and all of it, so that callers started together do not come back together. */
export function jittered(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}
