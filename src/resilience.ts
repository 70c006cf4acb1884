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
  /** Any other error (validation, access denied, missing table): not retried. */
  | 'client';

const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

const NETWORK_ERROR_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

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
  const kind = classifyFailure(error);
  return kind === 'throttle' || kind === 'server' || kind === 'network';
}

function opensCircuit(error: unknown): boolean {
  const kind = classifyFailure(error);
  if (kind === 'client') return CONFIGURATION_ERRORS.has((error as SdkErrorShape)?.name ?? '');
  return kind !== 'circuit-open';
}

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
 * jitter inside that budget, and a circuit breaker. Failures come back as an {@link Outcome}, logged and
 * counted, never thrown.
 */
export class DynamoGuard {
  readonly #policy: IPolicy;
  readonly #retry: IPolicy;
  readonly #breaker: ReturnType<typeof circuitBreaker> | undefined;
  readonly #settings: GuardSettings;

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
    const budget = timeout(settings.timeoutMs, TimeoutStrategy.Aggressive);
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
   * Runs `operation` under the budget (`timeoutMs`, or the cache's), retries and breaker. `fn` must pass
   * `signal` to the SDK call (`client.send(command, { abortSignal: signal })`) so that an expired budget
   * cancels the request.
   */
  async run<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, detail?: Record<string, unknown>, timeoutMs?: number): Promise<Outcome<T>> {
    const policy =
      timeoutMs === undefined
        ? this.#policy
        : wrap(...(this.#breaker === undefined ? [] : [this.#breaker]), timeout(timeoutMs, TimeoutStrategy.Aggressive), this.#retry);
    try {
      const value = await policy.execute(({ signal }) => fn(signal));
      return { ok: true, value: value as T };
    } catch (error) {
      const kind = classifyFailure(error);
      this.#record(operation, kind, error, detail);
      return { ok: false, kind, error };
    }
  }

  #record(operation: string, kind: FailureKind, error: unknown, detail?: Record<string, unknown>): void {
    const { stats, logger } = this.#settings;
    if (kind === 'circuit-open') {
      stats.increment('circuitRejections');
      logger.debug('dynamo-cache: circuit open, DynamoDB skipped', { operation, ...detail });
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
