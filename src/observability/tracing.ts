import type * as OpenTelemetry from '@opentelemetry/api';
import type { AsyncLocalStorage } from 'node:async_hooks';
import { openTelemetryApi } from '../on-demand.ts';

/**
 * OpenTelemetry spans for cache operations, when a tracer provider is registered (the ADOT Lambda layer,
 * the OpenTelemetry Node SDK, or `trace.setGlobalTracerProvider`). Without one, an operation costs one
 * property read more: `@opentelemetry/api` keeps its globals (the tracer provider among them) on
 * `globalThis` under a key every copy of the 1.x API shares, and only once a provider is there is the API
 * loaded (an optional peer dependency, from where dynamo-cache is installed or from a layer).
 *
 * Span attributes follow OpenTelemetry's semantic conventions where some exist (`db.system.name`,
 * `aws.dynamodb.table_names`, `error.type`); the rest, the cache's own, are named `dynamo_cache.*`. No key
 * is ever an attribute (cardinality, and keys may hold user ids).
 */
const API_GLOBALS = Symbol.for('opentelemetry.js.api.1');

/** The span names' prefix and the tracer's (instrumentation scope's) name. */
const SCOPE = 'dynamo-cache';

/** What one traced operation did while it ran, counted from this async context. */
interface OperationRecord {
  /** The cache's counters (`CacheStats` names) incremented for this operation. */
  readonly counts: Record<string, number>;
  /** DynamoDB requests sent. */
  requests: number;
  /** Where the answer came from, as `onResult` (or the middleware's `onResult`) names it. */
  source?: string | undefined;
}

interface Tracing {
  readonly api: typeof OpenTelemetry;
  readonly tracer: OpenTelemetry.Tracer;
  /** The registered provider the tracer came from: a new one (tests, a re-registration) gets a new tracer. */
  readonly provider: unknown;
}

let tracing: Tracing | undefined;
/** The API could not be loaded: never tried again. */
let unavailable = false;
/** The operation being traced in the current async context; created with the first traced operation. */
let scope: AsyncLocalStorage<OperationRecord> | undefined;

/** The API's globals: none until some code registers one (a tracer provider, a context manager...). */
function apiGlobals(): { trace?: unknown } | undefined {
  return (globalThis as Record<symbol, { trace?: unknown } | undefined>)[API_GLOBALS];
}

/** The tracer, when a tracer provider is registered and `@opentelemetry/api` can be loaded. */
function activeTracing(): Tracing | undefined {
  const provider = apiGlobals()?.trace;
  if (provider === undefined || unavailable) return undefined;
  if (tracing?.provider === provider) return tracing;
  const api = openTelemetryApi();
  if (api === undefined) {
    unavailable = true;
    return undefined;
  }
  scope ??= new (process.getBuiltinModule('node:async_hooks').AsyncLocalStorage)();
  tracing = { api, provider, tracer: api.trace.getTracer(SCOPE) };
  return tracing;
}

/** Whether operations are traced now (a tracer provider is registered and the API loads): without, a caller may skip `traced`. */
export function tracingOn(): boolean {
  return apiGlobals() !== undefined && activeTracing() !== undefined;
}

/** Counts `by` of the cache counter `counter` for the operation traced in this async context, if any. */
export function countForTrace(counter: string, by: number): void {
  const record = scope?.getStore();
  if (record !== undefined) record.counts[counter] = (record.counts[counter] ?? 0) + by;
}

/** `client`, whose `send` also counts a DynamoDB request for the operation traced in this async context. */
export function countingRequests<C extends { send(...args: never[]): unknown }>(client: C): C {
  const send = function (this: C, ...args: Parameters<C['send']>) {
    const record = scope?.getStore();
    if (record !== undefined) record.requests += 1;
    return client.send(...args);
  };
  return Object.create(client, { send: { value: send } }) as C;
}

/** What a span names its subject by. */
export interface TracedCache {
  readonly tableName: string;
  readonly namespace: string;
}

/**
 * Runs `operation` of `cache`: in a span named `dynamo-cache <name>` when tracing is on (the active span
 * while it runs, so that DynamoDB client spans and the fetcher's nest under it), and as it is otherwise.
 * `source` receives the function that records where the answer came from.
 */
export function traced<T>(name: string, cache: TracedCache, operation: (source: (source: string) => void) => T | Promise<T>): T | Promise<T> {
  const active = activeTracing();
  if (active === undefined) return operation(ignoreSource);
  const { api, tracer } = active;
  const record: OperationRecord = { counts: {}, requests: 0 };
  const attributes: OpenTelemetry.Attributes = { 'db.system.name': 'aws.dynamodb', 'aws.dynamodb.table_names': [cache.tableName], 'dynamo_cache.operation': name };
  if (cache.namespace !== '') attributes['dynamo_cache.namespace'] = cache.namespace;
  const span = tracer.startSpan(`${SCOPE} ${name}`, { kind: api.SpanKind.INTERNAL, attributes });
  const end = (error?: unknown) => {
    if (span.isRecording()) {
      span.setAttributes(outcome(record));
      if (error !== undefined) {
        span.setAttribute('error.type', (error as Error)?.name ?? typeof error);
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error)?.message });
      }
    }
    span.end();
  };
  const run = () => operation((source) => (record.source = source));
  try {
    const result = scope!.run(record, () => api.context.with(api.trace.setSpan(api.context.active(), span), run));
    if (!(result instanceof Promise)) {
      end();
      return result;
    }
    return result.then(
      (value) => {
        end();
        return value;
      },
      (error: unknown) => {
        end(error);
        throw error;
      },
    );
  } catch (error) {
    end(error);
    throw error;
  }
}

function ignoreSource(): void {}

/** Cache failures absorbed during the operation, by kind, from the counters that name them. */
const FAILURE_COUNTERS: ReadonlyArray<[string, string]> = [
  ['throttles', 'throttle'],
  ['timeouts', 'timeout'],
  ['corruptItems', 'corrupt-item'],
  ['circuitRejections', 'circuit-open'],
  ['deadlineSkips', 'deadline'],
];

/** The attributes an operation's record adds to its span. */
function outcome(record: OperationRecord): OpenTelemetry.Attributes {
  const n = (counter: string) => record.counts[counter] ?? 0;
  const attributes: OpenTelemetry.Attributes = { 'dynamo_cache.dynamodb.requests': record.requests };
  if (record.source !== undefined) {
    attributes['dynamo_cache.source'] = record.source;
    attributes['dynamo_cache.hit'] = record.source !== 'fetcher' && record.source !== 'none' && record.source !== 'handler';
    attributes['dynamo_cache.stale'] = record.source === 'stale' || n('staleHits') + n('staleIfError') > 0;
  }
  if (n('hits') + n('misses') > 1) Object.assign(attributes, { 'dynamo_cache.hits': n('hits'), 'dynamo_cache.misses': n('misses') });
  if (n('leaseWins') > 0) attributes['dynamo_cache.lease'] = 'won';
  else if (n('leaseWaitTimeouts') > 0) attributes['dynamo_cache.lease'] = 'wait-timed-out';
  else if (n('leaseWaits') > 0) attributes['dynamo_cache.lease'] = 'waited';
  if (n('coalesced') > 0) attributes['dynamo_cache.coalesced'] = true;
  if (n('earlyRefreshes') > 0) attributes['dynamo_cache.early_refresh'] = true;
  const failures = FAILURE_COUNTERS.filter(([counter]) => n(counter) > 0).map(([, kind]) => kind);
  // Errors with no counter of their own: 5xx answers, network and client errors.
  if (n('errors') > n('throttles') + n('timeouts') + n('corruptItems')) failures.push('error');
  if (failures.length > 0) attributes['dynamo_cache.failures'] = failures;
  return attributes;
}

/** The index of the options argument (where `onResult` goes) of each traced method, or -1 for none. */
type TracedMethods = Record<string, number>;

/**
 * Wraps `methods` of `type`'s prototype in `traced`: each call is a span when tracing is on. A method whose
 * options take `onResult` gets one that records the answer's source for the span, and calls the caller's.
 */
export function traceMethods(type: { prototype: object }, methods: TracedMethods): void {
  const prototype = type.prototype as Record<string, (...args: unknown[]) => unknown>;
  for (const [name, optionsAt] of Object.entries(methods)) {
    const method = prototype[name]!;
    if (method.length > 3) throw new TypeError(`traceMethods: ${name} takes more than 3 arguments`);
    // Three parameters, not `...args`: the fast path (no tracer provider) allocates nothing.
    const wrapper = function (this: TracedCache, a?: unknown, b?: unknown, c?: unknown) {
      if (!tracingOn()) return method.call(this, a, b, c);
      const args = [a, b, c];
      return traced(name, this, (source) => {
        const options = args[optionsAt];
        if (optionsAt >= 0 && (options === undefined || (typeof options === 'object' && options !== null))) {
          const caller = (options as { onResult?: unknown } | undefined)?.onResult;
          // A bad onResult stays the caller's, for the method to refuse.
          if (caller === undefined || typeof caller === 'function') {
            const onResult = (result: { source: string }) => {
              source(result.source);
              if (typeof caller === 'function') caller(result);
            };
            args[optionsAt] = { ...(options as object), onResult };
          }
        }
        return method.apply(this, args);
      });
    };
    Object.defineProperty(wrapper, 'name', { value: name });
    Object.defineProperty(prototype, name, { value: wrapper, writable: true, configurable: true });
  }
}
