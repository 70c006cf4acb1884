import { ExponentialBackoff, decorrelatedJitterGenerator, type IBackoff } from 'cockatiel';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheLogger } from '../observability/logger.ts';
import type { StatsRecorder } from '../observability/stats.ts';

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

function isRetryable(kind: FailureKind): boolean {
  return kind === 'throttle' || kind === 'server' || kind === 'network';
}

/** Whether a failure counts against DynamoDB in the breaker: the caller's deadline or abort never does. */
function opensCircuit(kind: FailureKind, error: unknown): boolean {
  if (kind === 'client') return CONFIGURATION_ERRORS.has((error as SdkErrorShape)?.name ?? '');
  return kind === 'throttle' || kind === 'server' || kind === 'network' || kind === 'timeout';
}

/**
 * What bounds one caller's cache work besides the operation's own time budget: the caller's AbortSignal, and
 * the time (epoch ms) by which the cache must be done (the call's deadline less `deadlineMarginMs`).
 */
export interface CallBudget {
  readonly signal?: AbortSignal | undefined;
  readonly untilMs?: number | undefined;
  /** A longer time budget for each operation than the cache's (a caller waiting out a slow DynamoDB asks with more patience). */
  readonly timeoutMs?: number | undefined;
}

/** How much later than its budget's end a request's own `requestTimeout` ends it (the budget decides first). */
export const REQUEST_TIMEOUT_SLACK_MS = 25;

/**
 * How many ms longer than its budget's own a request's timeout may be and still be the client's: the clock
 * moves between the start of an operation and its first request.
 */
const CLIENT_TIMEOUT_TOLERANCE_MS = 2;

/** After timeouts, a caller that waits on DynamoDB gives each request up to this many times the cache's budget. */
const MAX_PATIENCE = 8;

/**
 * The time budget of the next request of a caller that waits on a slow DynamoDB (one that timed out under
 * `currentMs`, or the cache's own `timeoutMs` when `undefined`): twice as long, up to eight times `timeoutMs`.
 */
export function morePatience(currentMs: number | undefined, timeoutMs: number): number {
  return Math.min((currentMs ?? timeoutMs) * 2, MAX_PATIENCE * timeoutMs);
}

/** No bound beyond the operation's own time budget. */
export const UNBOUNDED: CallBudget = Object.freeze({});

/**
 * One attempt of a guarded operation: `signal` ends when the operation's budget does (for waits between
 * requests), `http` is what to pass to `client.send(command, http)` so that the request ends then too.
 */
export interface Attempt {
  readonly signal: AbortSignal;
  /** `undefined` when the client's own `requestTimeout` is the request's (see `GuardSettings.requestTimeoutMs`). */
  readonly http: { readonly abortSignal?: AbortSignal; readonly requestTimeout?: number } | undefined;
  /** Says the operation is being throttled (a batch's unprocessed items): if its budget runs out, that is why. */
  throttled(): void;
}

/** The result of a guarded operation: never an exception. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly kind: FailureKind; readonly error: unknown };

/** State of the circuit breaker, as shown in `cache.stats().circuit`. */
export type CircuitStatus = 'closed' | 'open' | 'half-open' | 'disabled';

/** Settings of a {@link DynamoGuard}. */
export interface GuardSettings {
  readonly timeoutMs: number;
  /**
   * How a request past its budget is cancelled: `signal` (an AbortSignal, which any client honours) or
   * `request-timeout` (the request's own `requestTimeout`, for a client the cache configured to throw on
   * it). The second spares every call the SDK's per-request abort race (a few % of throughput); a caller's
   * own AbortSignal is passed either way.
   */
  readonly cancel: 'signal' | 'request-timeout';
  /**
   * With `request-timeout`: the `requestTimeout` the client gives a request sent without options (`timeoutMs`
   * plus the slack). A request whose own timeout is that one is sent without options: the SDK then reuses the
   * middleware stack it resolved for the command (`cacheMiddleware`), where options make it resolve the stack
   * again, a large part of its CPU per request.
   */
  readonly requestTimeoutMs?: number | undefined;
  readonly retry: Required<RetryOptions>;
  readonly breaker: Required<BreakerOptions> | false;
  readonly logger: CacheLogger;
  readonly stats: StatsRecorder;
}

/**
 * A guarded operation in progress, and the attempt its function sees: one object holds what closures held
 * (the budget's verdict, the timers, how the promise ends), so that a call allocates little; its abort
 * controller is made only when something needs a signal (requests cancelled by signal, a batch, a wait
 * between retries, the end of the budget).
 */
class GuardedOperation implements Attempt {
  /** Set by `nextAttempt` before each attempt. */
  http: Attempt['http'] = undefined;
  /** Why the operation ended before its attempts did: its budget (`expiry`, or `throttle`), or the caller's abort. */
  cut: FailureKind | undefined = undefined;
  wasThrottled = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  grace: ReturnType<typeof setImmediate> | undefined = undefined;
  end: ((reason: unknown) => void) | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  readonly #bySignal: { readonly abortSignal: AbortSignal } | undefined;
  readonly #clientTimeoutMs: number | undefined;
  readonly expiry: FailureKind;
  readonly endMs: number;
  readonly callerSignal: AbortSignal | undefined;

  /**
   * `expiry`: what the end of the budget means (`timeout`, or `deadline` when the caller's deadline set it);
   * `endMs`: when a request's own timeout ends it; `bySignal`: requests are cancelled by signal instead;
   * `callerSignal`: the caller's, whose abort ends the operation (this object is its listener);
   * `clientTimeoutMs`: the client's own request timeout (see `GuardSettings.requestTimeoutMs`).
   */
  constructor(expiry: FailureKind, endMs: number, bySignal: boolean, callerSignal: AbortSignal | undefined, clientTimeoutMs: number | undefined) {
    this.expiry = expiry;
    this.endMs = endMs;
    this.callerSignal = callerSignal;
    this.#bySignal = bySignal || callerSignal !== undefined ? { abortSignal: this.signal } : undefined;
    this.#clientTimeoutMs = clientTimeoutMs;
  }

  /** Ends when the operation does. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /** Whether the operation has ended (its budget, or the caller): no attempt follows. */
  get ended(): boolean {
    return this.#controller?.signal.aborted === true;
  }

  /** Sets `http` for the next request. */
  nextAttempt(): void {
    if (this.#bySignal !== undefined) {
      this.http = this.#bySignal;
      return;
    }
    const timeoutMs = Math.max(1, Math.ceil(this.endMs - Date.now()));
    const client = this.#clientTimeoutMs;
    this.http = client !== undefined && timeoutMs <= client && timeoutMs >= client - CLIENT_TIMEOUT_TOLERANCE_MS ? undefined : { requestTimeout: timeoutMs };
  }

  throttled(): void {
    this.wasThrottled = true;
  }

  /** Ends the operation's signal; returns its reason. */
  abort(reason?: unknown): unknown {
    const controller = (this.#controller ??= new AbortController());
    controller.abort(reason);
    return controller.signal.reason;
  }

  /** The caller's signal aborted (an EventListener object, so that no closure is made per call). */
  handleEvent(): void {
    this.cut = 'aborted';
    const reason = this.callerSignal!.reason;
    this.abort(reason);
    this.end?.(reason);
  }
}

/** The budget of `guarded` ran out (a timer's callback, given its operation rather than closing over it). */
function budgetSpent(guarded: GuardedOperation): void {
  // The verdict is the budget's from now on (a request's own timeout firing in this turn is this one), but it
  // takes effect after one turn of grace: an answer that arrived while the event loop was busy (a CPU-starved
  // function) is read in this turn's I/O phase, after timers, and is taken rather than thrown away.
  guarded.cut ??= guarded.expiry === 'timeout' && guarded.wasThrottled ? 'throttle' : guarded.expiry;
  guarded.grace = setImmediate(endAfterGrace, guarded);
}

/** The grace turn is over: the operation ends with its signal's reason. */
function endAfterGrace(guarded: GuardedOperation): void {
  guarded.end!(guarded.abort());
}

/**
 * Runs DynamoDB operations so that none can hurt the caller: each gets a time budget (an abort signal that
 * cancels the HTTP request), retries of throttling, 5xx and network errors with exponential backoff and
 * decorrelated jitter inside that budget, and a circuit breaker. The budget is cut short by the caller's
 * deadline, and the caller's AbortSignal cancels the request. Failures come back as an {@link Outcome},
 * logged and counted, never thrown.
 *
 * The backoff delays are cockatiel's (`ExponentialBackoff` with `decorrelatedJitterGenerator`); running the
 * operation is done here in one async function, with one timer and one AbortController, because cockatiel's
 * four policy layers cost 5-8 us of CPU per successful call in place (measured, BENCHMARKS.md), which is
 * most of what the library may add to a DynamoDB hit. The timeout is aggressive: an operation returns at the
 * end of its budget even if the request does not.
 */
export class DynamoGuard {
  readonly #settings: GuardSettings;
  readonly #backoff: ExponentialBackoff<unknown> | undefined;
  readonly #breaker: CircuitBreaker | undefined;

  constructor(settings: GuardSettings) {
    this.#settings = settings;
    const { retry, breaker, logger, stats } = settings;
    this.#backoff =
      retry.maxAttempts > 1 ? new ExponentialBackoff({ generator: decorrelatedJitterGenerator, initialDelay: retry.baseDelayMs, maxDelay: retry.maxDelayMs }) : undefined;
    this.#breaker =
      breaker === false
        ? undefined
        : new CircuitBreaker(breaker, {
            opened: () => {
              stats.increment('circuitOpened');
              logger.warn('dynamo-cache: circuit opened, DynamoDB is skipped until a probe succeeds', { halfOpenAfterMs: breaker.halfOpenAfterMs });
            },
            halfOpen: () => logger.debug('dynamo-cache: circuit half-open, probing DynamoDB'),
            closed: () => logger.info('dynamo-cache: circuit closed, DynamoDB is back'),
          });
  }

  /** State of the circuit breaker. */
  get circuit(): CircuitStatus {
    return this.#breaker?.status ?? 'disabled';
  }

  /**
   * Runs `operation` under its time budget (`timeoutMs`, or the cache's), retries and breaker. `fn` must pass
   * `attempt.http` to the SDK call (`client.send(command, attempt.http)`) so that an expired budget cancels
   * the request. `call` cuts it shorter: at `call.untilMs`, or when `call.signal` aborts, the request
   * is cancelled and the operation ends at once (`deadline`, `aborted`), without counting against DynamoDB
   * in the breaker: the caller ran out of time, DynamoDB did not fail.
   */
  async run<T>(operation: string, fn: (attempt: Attempt) => Promise<T>, detail?: Record<string, unknown>, timeoutMs?: number, call: CallBudget = UNBOUNDED): Promise<Outcome<T>> {
    if (call.signal?.aborted) return { ok: false, kind: 'aborted', error: call.signal.reason };
    let budgetMs = Math.max(timeoutMs ?? this.#settings.timeoutMs, call.timeoutMs ?? 0);
    let expiry: FailureKind = 'timeout';
    if (call.untilMs !== undefined) {
      const leftMs = Math.floor(call.untilMs - Date.now());
      if (leftMs <= 0) return this.#skipped(operation, detail);
      if (leftMs < budgetMs) {
        budgetMs = leftMs;
        expiry = 'deadline';
      }
    }
    const breaker = this.#breaker;
    const probe = breaker === undefined ? false : breaker.admit();
    if (probe === undefined) return this.#failed(operation, 'circuit-open', undefined, detail);
    // The request's own timeout (a client the cache made) ends it just after the budget's verdict, not before.
    const guarded = new GuardedOperation(expiry, Date.now() + budgetMs + REQUEST_TIMEOUT_SLACK_MS, this.#settings.cancel === 'signal', call.signal, this.#settings.requestTimeoutMs);
    call.signal?.addEventListener('abort', guarded, { once: true });
    try {
      // One promise settles the operation: the attempts, or the end of the budget (or the caller's abort),
      // whichever comes first, so an operation never outlives its budget even if a request does. (No
      // listener on our own signal: each EventTarget listener costs, on every call.)
      const value = await new Promise<T>((resolve, reject) => {
        guarded.end = reject;
        guarded.timer = setTimeout(budgetSpent, budgetMs, guarded);
        this.#attempts(fn, guarded).then(resolve, reject);
      });
      if (breaker !== undefined) breaker.succeeded(probe);
      return { ok: true, value };
    } catch (error) {
      const kind = guarded.cut ?? classifyFailure(error);
      if (breaker !== undefined) {
        // Throttling or slowness of one partition says nothing of the table: each counts once per key in a run of
        // failures, so that only pressure across several keys (the table's or the account's limit, a DynamoDB
        // that answers nothing) opens the circuit, and a hot key's waiters keep coordinating through DynamoDB.
        if (opensCircuit(kind, error)) breaker.failed(probe, kind === 'throttle' || kind === 'timeout' ? String(detail?.key ?? operation) : undefined);
        // DynamoDB answered (a client error), or the caller left: as far as the circuit knows, it works.
        else if (kind !== 'aborted' && kind !== 'deadline') breaker.succeeded(probe);
        else breaker.released(probe);
      }
      return this.#failed(operation, kind, kind === 'aborted' ? call.signal?.reason : error, detail);
    } finally {
      clearTimeout(guarded.timer);
      clearImmediate(guarded.grace);
      call.signal?.removeEventListener('abort', guarded);
    }
  }

  /** Calls `fn`, retrying throttling, 5xx and network errors with backoff until the operation's budget ends. */
  async #attempts<T>(fn: (attempt: Attempt) => Promise<T>, guarded: GuardedOperation): Promise<T> {
    let backoff: IBackoff<unknown> | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        guarded.nextAttempt();
        return await fn(guarded);
      } catch (error) {
        if (guarded.ended || this.#backoff === undefined || attempt >= this.#settings.retry.maxAttempts || !isRetryable(classifyFailure(error))) throw error;
        backoff = backoff === undefined ? this.#backoff.next() : backoff.next(undefined);
        this.#settings.stats.increment('retries');
        await sleep(backoff.duration, undefined, { signal: guarded.signal });
      }
    }
  }

  #failed<T>(operation: string, kind: FailureKind, error: unknown, detail: Record<string, unknown> | undefined): Outcome<T> {
    this.#record(operation, kind, error, detail);
    return { ok: false, kind, error };
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

/** What a {@link CircuitBreaker} tells the cache about. */
interface BreakerEvents {
  opened(): void;
  halfOpen(): void;
  closed(): void;
}

/**
 * Consecutive-failure circuit breaker: `consecutiveFailures` failed operations in a row open it (throttles and
 * timeouts counted once per partition key: a hot or slow key is not a table that is down); after
 * `halfOpenAfterMs` one operation is let through as a probe (the others are still skipped), and its outcome
 * closes the circuit or opens it again. The same rules as cockatiel's `ConsecutiveBreaker` with
 * `halfOpenAfter`, without a promise per call.
 */
class CircuitBreaker {
  readonly #options: Required<BreakerOptions>;
  readonly #events: BreakerEvents;
  #state: 'closed' | 'open' | 'half-open' = 'closed';
  #failures = 0;
  /** Keys throttled or timed out in the current run of failures. */
  readonly #pressedKeys = new Set<string>();
  #openedAt = 0;

  constructor(options: Required<BreakerOptions>, events: BreakerEvents) {
    this.#options = options;
    this.#events = events;
  }

  get status(): CircuitStatus {
    return this.#state;
  }

  /** Whether an operation may run now: `false` (an ordinary one), `true` (the probe), or `undefined` (skip DynamoDB). */
  admit(): boolean | undefined {
    if (this.#state === 'closed') return false;
    if (this.#state === 'half-open') return undefined;
    if (Date.now() - this.#openedAt < this.#options.halfOpenAfterMs) return undefined;
    this.#state = 'half-open';
    this.#events.halfOpen();
    return true;
  }

  succeeded(probe: boolean): void {
    this.#failures = 0;
    // Checked first: every successful operation passes here, and clearing even an empty set costs.
    if (this.#pressedKeys.size > 0) this.#pressedKeys.clear();
    if (probe) {
      this.#state = 'closed';
      this.#events.closed();
    }
  }

  /** An operation failed; `pressedKey` when DynamoDB throttled it or was too slow, which counts once per key until a success. */
  failed(probe: boolean, pressedKey?: string): void {
    if (!probe && pressedKey !== undefined) {
      if (this.#pressedKeys.has(pressedKey)) return;
      this.#pressedKeys.add(pressedKey);
    }
    if (probe || ++this.#failures >= this.#options.consecutiveFailures) this.#open();
  }

  /** The operation ended without a verdict on DynamoDB (the caller left): a probe's turn goes to the next operation. */
  released(probe: boolean): void {
    if (probe) {
      this.#state = 'open';
      this.#openedAt = Date.now() - this.#options.halfOpenAfterMs;
    }
  }

  #open(): void {
    this.#state = 'open';
    this.#openedAt = Date.now();
    this.#failures = 0;
    this.#pressedKeys.clear();
    this.#events.opened();
  }
}
