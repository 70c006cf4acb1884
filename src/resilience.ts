import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  circuitBreaker,
  decorrelatedJitterGenerator,
  handleWhen,
  retry,
  timeout,
  wrap,
  type IPolicy,
} from 'cockatiel';
import type { CacheLogger } from './logger.ts';
import type { StatsRecorder } from './stats.ts';

/** Retries of a failed DynamoDB request, inside the operation's time budget. */
export interface RetryOptions {
  /** Attempts per operation, the first included (`1` turns retries off). Default `3`. */
  maxAttempts?: number | undefined;
  /** First backoff delay in ms; later ones grow exponentially with decorrelated jitter. Default `20`. */
  baseDelayMs?: number | undefined;
  /** Longest backoff delay in ms. Default `100`. */
  maxDelayMs?: number | undefined;
}

/** Defaults of {@link RetryOptions}. */
export const RETRY_DEFAULTS: Required<RetryOptions> = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 };

/** The circuit breaker that stops calling DynamoDB after repeated failures. */
export interface BreakerOptions {
  /** Consecutive failed operations that open the circuit. Default `5`. */
  consecutiveFailures?: number | undefined;
  /** How long the circuit stays open before one probe request is let through, in ms. Default `5000`. */
  halfOpenAfterMs?: number | undefined;
}

/** Defaults of {@link BreakerOptions}. */
export const BREAKER_DEFAULTS: Required<BreakerOptions> = { consecutiveFailures: 5, halfOpenAfterMs: 5000 };

/** Why a DynamoDB operation failed. */
export type FailureKind =
  /** Throttled by DynamoDB: retried with backoff. */
  | 'throttle'
  /** Cut off by the time budget. */
  | 'timeout'
  /** A 5xx answer: retried. */
  | 'server'
  /** Connection refused, reset or dropped: retried. */
  | 'network'
  /** The circuit is open: DynamoDB was not called. */
  | 'circuit-open'
  /** The call's deadline (less `deadlineMarginMs`) left no time: DynamoDB was not called, or the request was cut at the deadline. */
  | 'deadline'
  /** The caller's AbortSignal aborted: the request was cancelled. */
  | 'aborted'
  /** Any other error (validation, access denied, missing table): not retried. */
  | 'client';

const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

const NETWORK_ERROR_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** The reason a call's deadline cut its request short. */
const DEADLINE_REACHED = Symbol('deadline reached');

/** A request cancelled because its caller ran out of time or gave up: neither retried nor held against DynamoDB. */
class CutShortError extends Error {
  override name = 'CutShortError';

  constructor(cause: unknown) {
    super('cancelled by the caller\'s deadline or signal', { cause });
  }
}

/** A promise that rejects when `signal` aborts (and never settles otherwise). */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

/** Aggressive: the operation returns at the end of its budget whatever the request does. No abort after a success: that builds a DOMException on every call. */
const TIMEOUT_OPTIONS = { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false } as const;

/** Client errors that say the cache cannot work at all (no table, no permission): they open the circuit. */
const CONFIGURATION_ERRORS = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'MissingAuthenticationTokenException',
  'CredentialsProviderError',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Classifies an error thrown while calling DynamoDB. */
export function classifyFailure(error: unknown): FailureKind {
  if (error instanceof BrokenCircuitError) return 'circuit-open';
  if (error instanceof TaskCancelledError) return 'timeout';
  const e = (error ?? {}) as SdkErrorShape;
  if (e.name === 'AbortError') return 'timeout';
  if (e.name !== undefined && THROTTLING_ERRORS.has(e.name)) return 'throttle';
  const status = e.$metadata?.httpStatusCode;
  if (status === 429) return 'throttle';
  if (e.$fault === 'server' || (status !== undefined && status >= 500)) return 'server';
  if (
    (e.code !== undefined && NETWORK_ERROR_CODES.has(e.code)) ||
    e.name === 'TimeoutError' ||
    /socket hang up|ECONNRESET|network/i.test(e.message ?? '')
  ) {
    return 'network';
  }
  return 'client';
}

function isRetryable(error: unknown): boolean {
  if (error instanceof CutShortError) return false;
  const kind = classifyFailure(error);
  return kind === 'throttle' || kind === 'server' || kind === 'network';
}

function opensCircuit(error: unknown): boolean {
  if (error instanceof CutShortError) return false;
  const kind = classifyFailure(error);
  if (kind === 'client') return CONFIGURATION_ERRORS.has((error as SdkErrorShape)?.name ?? '');
  return kind !== 'circuit-open';
}

/**
 * What bounds one caller's cache work besides the operation's own time budget: the caller's AbortSignal, and
 * the time (epoch ms) by which the cache must be done (the call's deadline less `deadlineMarginMs`).
 */
export interface CallBudget {
  readonly signal?: AbortSignal | undefined;
  readonly untilMs?: number | undefined;
}

/** No bound beyond the operation's own time budget. */
export const UNBOUNDED: CallBudget = Object.freeze({});

/** The result of a guarded operation: never an exception. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly kind: FailureKind; readonly error: unknown };

/** State of the circuit breaker, as shown in `cache.stats().circuit`. */
export type CircuitStatus = 'closed' | 'open' | 'half-open' | 'disabled';

/** Settings of a {@link DynamoGuard}. */
export interface GuardSettings {
  readonly timeoutMs: number;
  readonly retry: Required<RetryOptions>;
  readonly breaker: Required<BreakerOptions> | false;
  readonly logger: CacheLogger;
  readonly stats: StatsRecorder;
}

/**
 * Runs DynamoDB operations so that none can hurt the caller: each gets a time budget (an abort signal that
 * cancels the HTTP request), retries of throttling, 5xx and network errors with exponential backoff and
 * jitter inside that budget, and a circuit breaker. The budget is cut short by the caller's deadline, and
 * the caller's AbortSignal cancels the request. Failures come back as an {@link Outcome}, logged and counted,
 * never thrown.
 *
 * The cockatiel timeout is aggressive (the operation returns at the end of its budget even if the request
 * does not) and does not abort its signal after a success: a successful call allocates no `DOMException`.
 */
export class DynamoGuard {
  readonly #policy: IPolicy;
  readonly #retry: IPolicy;
  readonly #breaker: ReturnType<typeof circuitBreaker> | undefined;
  readonly #settings: GuardSettings;
  readonly #policies = new Map<number, IPolicy>();

  constructor(settings: GuardSettings) {
    this.#settings = settings;
    const { retry: retryOptions, logger, stats } = settings;
    const retryPolicy = retry(handleWhen(isRetryable), {
      maxAttempts: retryOptions.maxAttempts - 1,
      backoff: new ExponentialBackoff({
        generator: decorrelatedJitterGenerator,
        initialDelay: retryOptions.baseDelayMs,
        maxDelay: retryOptions.maxDelayMs,
      }),
    });
    retryPolicy.onRetry(() => stats.increment('retries'));
    this.#retry = retryPolicy;
    const budget = timeout(settings.timeoutMs, TIMEOUT_OPTIONS);
    if (settings.breaker === false) {
      this.#policy = wrap(budget, retryPolicy);
      return;
    }
    const breaker = circuitBreaker(handleWhen(opensCircuit), {
      halfOpenAfter: settings.breaker.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(settings.breaker.consecutiveFailures),
    });
    breaker.onBreak(() => {
      stats.increment('circuitOpened');
      logger.warn('dynamo-cache: circuit opened, DynamoDB is skipped until a probe succeeds', {
        halfOpenAfterMs: settings.breaker === false ? undefined : settings.breaker.halfOpenAfterMs,
      });
    });
    breaker.onReset(() => logger.info('dynamo-cache: circuit closed, DynamoDB is back'));
    breaker.onHalfOpen(() => logger.debug('dynamo-cache: circuit half-open, probing DynamoDB'));
    this.#breaker = breaker;
    this.#policy = wrap(breaker, budget, retryPolicy);
  }

  /** State of the circuit breaker. */
  get circuit(): CircuitStatus {
    switch (this.#breaker?.state) {
      case undefined:
        return 'disabled';
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return 'open';
    }
  }

  /**
   * Runs `operation` under its time budget (`timeoutMs`, or the cache's), retries and breaker. `fn` must pass
   * `signal` to the SDK call (`client.send(command, { abortSignal: signal })`) so that an expired budget
   * cancels the request. `call` cuts it shorter: at `call.untilMs`, or when `call.signal` aborts, the request
   * is cancelled and the operation ends at once (`deadline`, `aborted`), without counting against DynamoDB
   * in the breaker: the caller ran out of time, DynamoDB did not fail.
   */
  async run<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, detail?: Record<string, unknown>, timeoutMs?: number, call: CallBudget = UNBOUNDED): Promise<Outcome<T>> {
    const policy = timeoutMs === undefined ? this.#policy : this.#policyWithTimeout(timeoutMs);
    if (call.signal === undefined && call.untilMs === undefined) {
      try {
        return { ok: true, value: (await policy.execute(({ signal }) => fn(signal))) as T };
      } catch (error) {
        return this.#failed(operation, classifyFailure(error), error, detail);
      }
    }
    if (call.signal?.aborted) return { ok: false, kind: 'aborted', error: call.signal.reason };
    const remainingMs = call.untilMs === undefined ? Number.POSITIVE_INFINITY : Math.floor(call.untilMs - Date.now());
    if (remainingMs <= 0) return this.#skipped(operation, detail);
    const cut = new AbortController();
    const timer = remainingMs < (timeoutMs ?? this.#settings.timeoutMs) ? setTimeout(() => cut.abort(DEADLINE_REACHED), remainingMs) : undefined;
    const onCallerAbort = () => cut.abort(call.signal!.reason);
    call.signal?.addEventListener('abort', onCallerAbort, { once: true });
    try {
      const running = policy.execute(({ signal }) =>
        fn(AbortSignal.any([signal, cut.signal])).catch((error: unknown) => {
          throw cut.signal.aborted ? new CutShortError(error) : error;
        }),
      );
      running.catch(() => undefined); // when the race below ends first, this settles later, unobserved
      return { ok: true, value: (await Promise.race([running, whenAborted(cut.signal)])) as T };
    } catch (error) {
      if (!cut.signal.aborted) return this.#failed(operation, classifyFailure(error), error, detail);
      return this.#failed(operation, cut.signal.reason === DEADLINE_REACHED ? 'deadline' : 'aborted', call.signal?.reason ?? error, detail);
    } finally {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  #failed<T>(operation: string, kind: FailureKind, error: unknown, detail: Record<string, unknown> | undefined): Outcome<T> {
    this.#record(operation, kind, error, detail);
    return { ok: false, kind, error };
  }

  /** The policy for a budget other than the cache's (large values' chunks): built once per budget. */
  #policyWithTimeout(timeoutMs: number): IPolicy {
    let policy = this.#policies.get(timeoutMs);
    if (policy === undefined) {
      policy = wrap(...(this.#breaker === undefined ? [] : [this.#breaker]), timeout(timeoutMs, TIMEOUT_OPTIONS), this.#retry);
      this.#policies.set(timeoutMs, policy);
    }
    return policy;
  }

  /** The deadline left no time for `operation`: a miss, counted and noted at debug level (it is expected near a deadline, not a fault). */
  #skipped<T>(operation: string, detail: Record<string, unknown> | undefined): Outcome<T> {
    this.#settings.stats.increment('deadlineSkips');
    this.#settings.logger.debug('dynamo-cache: no time left before the deadline; DynamoDB skipped', { operation, ...detail });
    return { ok: false, kind: 'deadline', error: undefined };
  }

  #record(operation: string, kind: FailureKind, error: unknown, detail?: Record<string, unknown>): void {
    const { stats, logger } = this.#settings;
    if (kind === 'circuit-open') {
      stats.increment('circuitRejections');
      logger.debug('dynamo-cache: circuit open, DynamoDB skipped', { operation, ...detail });
      return;
    }
    // The caller gave up: nothing went wrong with DynamoDB.
    if (kind === 'aborted') {
      logger.debug('dynamo-cache: DynamoDB request cancelled by the caller', { operation, ...detail });
      return;
    }
    if (kind === 'deadline') {
      stats.increment('deadlineSkips');
      logger.debug('dynamo-cache: DynamoDB request cut at the deadline', { operation, ...detail });
      return;
    }
    stats.increment('errors');
    if (kind === 'throttle') stats.increment('throttles');
    if (kind === 'timeout') stats.increment('timeouts');
    const e = error as SdkErrorShape;
    logger.warn(`dynamo-cache: DynamoDB ${operation} failed (${kind}); treated as a cache miss`, {
      operation,
      request: operation,
      failure: kind,
      errorName: e?.name,
      errorMessage: e?.message,
      ...detail,
    });
  }
}
