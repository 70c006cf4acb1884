/**
 * How errors of AWS SDK calls are treated by the cache: throttling and transient errors are answered from a
 * value within `staleIfErrorSeconds`; "not found" errors may be cached as negative entries; anything else
 * propagates as it is.
 */

/** Throttling error names: the SDK's own list (`@smithy/core` retry) and the services' (Cognito, S3). */
const THROTTLING = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
/** Transient error names: timeouts and the services' internal errors. */
const TRANSIENT = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'InternalErrorException',
  'InternalFailure',
  'InternalServerError',
  'InternalServerException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
]);
const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** "Not found" error names (S3 `NoSuchKey`/`NotFound`, Cognito, SSM, Secrets Manager, DynamoDB). */
const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'ResourceNotFoundException', 'UserNotFoundException', 'ParameterNotFound', 'ParameterVersionNotFound']);

/** The fields of an SDK service error the cache reads. */
interface ServiceErrorLike {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $fault?: unknown;
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

/**
 * Whether the service is throttling or briefly failing (`ThrottlingException`, `TooManyRequestsException`,
 * `SlowDown`, `RequestLimitExceeded`, HTTP 429 and 5xx, timeouts, network errors): the errors a stale value
 * may stand in for. A caller's abort is not one.
 */
export function isThrottlingOrTransient(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object') return false;
  const e = error as ServiceErrorLike;
  if (e.name === 'AbortError') return false;
  return (
    THROTTLING.has(String(e.name)) ||
    TRANSIENT.has(String(e.name)) ||
    e.$retryable?.throttling === true ||
    TRANSIENT_STATUS.has(e.$metadata?.httpStatusCode ?? 0) ||
    NETWORK_CODES.has(String(e.code)) ||
    (depth < 5 && e.cause !== undefined && isThrottlingOrTransient(e.cause, depth + 1))
  );
}

/** What a negative entry keeps of a "not found" error: enough to throw an equivalent one. */
export interface StoredError {
  readonly name: string;
  readonly message: string;
  readonly fault: 'client' | 'server';
  readonly httpStatusCode: number | undefined;
  readonly requestId: string | undefined;
}

/** The stored form of a "not found" error (HTTP 404 or a known name), or `undefined` for any other error. */
export function notFoundError(error: unknown): StoredError | undefined {
  if (!(error instanceof Error)) return undefined;
  const e = error as Error & ServiceErrorLike & { $metadata?: { requestId?: string } };
  if (!NOT_FOUND.has(e.name) && e.$metadata?.httpStatusCode !== 404) return undefined;
  return { name: e.name, message: e.message, fault: e.$fault === 'server' ? 'server' : 'client', httpStatusCode: e.$metadata?.httpStatusCode, requestId: e.$metadata?.requestId };
}

/**
 * An error equivalent to the stored one, as the SDK would throw it: same `name`, `message`, `$fault` and
 * `$metadata`. The SDK's service exceptions recognise it with `instanceof` too (`err instanceof NoSuchKey`),
 * since they match on the error name when the prototype is not theirs.
 */
export function rebuildError(stored: StoredError, metadata: Record<string, unknown>): Error {
  const error = new Error(stored.message);
  error.name = stored.name;
  return Object.assign(error, {
    $fault: stored.fault,
    $metadata: { httpStatusCode: stored.httpStatusCode, requestId: stored.requestId, ...metadata },
  });
}
