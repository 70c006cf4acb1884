import { createHash } from 'node:crypto';
import { abortError, underSignal, type AbortSignalLike } from '../resilience/abort.ts';
import { DynamoCache, type Acquisition, type FetchTurn, type GetOrSetOptions } from '../cache.ts';
import { InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { LEASE_DEFAULTS, booleanOption, nonNegativeNumber, positiveInteger, positiveNumber, resolveLease, type LeaseOptions } from '../options.ts';
import { bodyOf, isStreamingBody, readBody, streamMixinOf, type StreamMixin } from './cached-body.ts';
import { decodeRecord, encodeRecord, type CachedRecord } from './cached-output.ts';
import { hardRefusalOf, isIdentityOperation, operationOf, refusalOf, wantsLiveAnswer } from './command-rules.ts';
import { principalOf, type CallIdentity, type PrincipalRule } from './principal.ts';
import { requestKey, type RequestScope } from './request-key.ts';
import { redactedMembers, sensitiveAnswerOf } from './sensitive-members.ts';
import { isThrottlingOrTransient, notFoundError, rebuildError } from './service-errors.ts';
import type { Json } from './tagged-json.ts';

/** How one command is cached (an entry of `CacheAwsClientOptions.commands`). */
export interface CachedCommandOptions<TInput = any> {
  /** Seconds an output stays fresh. Required. */
  ttlSeconds: number;
  /** Seconds after `ttlSeconds` during which the stale output is answered while one caller refreshes it. Default: the cache's. */
  staleWhileRevalidateSeconds?: number;
  /**
   * Seconds after `ttlSeconds` during which the stale output is answered when the service throttles or
   * briefly fails (`ThrottlingException`, `TooManyRequestsException`, `SlowDown`, HTTP 429/5xx...). Default: the cache's.
   */
  staleIfErrorSeconds?: number;
  /**
   * Seconds a "not found" error (S3 `NoSuchKey`/`NotFound`, `ResourceNotFoundException`, `UserNotFoundException`,
   * `ParameterNotFound`, any HTTP 404) is cached and thrown again without calling the service. Default `0` (not cached).
   */
  negativeTtlSeconds?: number;
  /**
   * The part of the cache key that identifies the input, instead of the hash of the whole input (it is hashed
   * too). Two inputs with the same `key` share one cached output: include everything the output depends on.
   */
  key?: (input: TInput) => string;
  /** The refresh lease for this command: `false` for none, or options over the cache's. Default: the cache's. */
  lease?: boolean | LeaseOptions;
  /**
   * Largest streaming body (S3 `GetObject`'s `Body`) cached, in bytes; a larger one passes through uncached.
   * Default: the cache's `maxValueBytes`.
   */
  maxBodyBytes?: number;
  /**
   * Store outputs that carry secrets (members the AWS SDK marks sensitive: Secrets Manager and SSM parameter
   * values, Cognito user names and attributes, client secrets) even though the cache has no `encryption`.
   * Default `false`.
   */
  allowPlaintext?: boolean;
  /**
   * Share this command's outputs across principals: every caller on the table and namespace gets the output
   * any of them obtained, whatever its credentials (objects every principal may read anyway). Refused for
   * commands whose answer is about the caller's own credentials (STS `GetCallerIdentity`). Default `false`.
   */
  shareAcrossPrincipals?: boolean;
  /**
   * Cache a command that is not a plain read (its name does not start with a read verb) or whose answer is
   * minted for the call (credentials, tokens, signed URLs, one-time codes, stream iterators). Almost always a
   * mistake: callers would share one write's answer, or one caller's credentials. Default `false`.
   */
  dangerouslyAllowUnsafeCommand?: boolean;
}

/** Options of {@link cacheAwsClient}. */
export interface CacheAwsClientOptions {
  /** The cache: its namespace and table are shared by every client and function that uses them. */
  cache: DynamoCache;
  /** The commands to cache, by class name (`GetObjectCommand`); any other command passes through untouched. */
  commands: Readonly<Record<string, CachedCommandOptions>>;
  /**
   * A stable name for the authority this client's credentials carry (the role, `tenant:<id>`), shared by
   * every client and environment whose credentials carry the same: their outputs are shared, and never with
   * another principal. Default: from the credentials each call is signed with (the Lambda function's own
   * role; a long-term access key; else the one session of temporary credentials).
   */
  principal?: string;
}

/**
 * How a cached command's output was answered, in `output.$metadata.cache`: `hit` (fresh from the cache),
 * `stale` (past its TTL, while another caller refreshes it or because the service failed), `miss` (from the
 * service, now cached), `bypass` (from the service, not cacheable: see the logs).
 */
export type AwsCacheStatus = 'hit' | 'stale' | 'miss' | 'bypass';

/** What `cacheAwsClient` adds to the client it returns. */
export interface CachedAwsClient {
  /**
   * Ends the cached output of `command` (one of the cached commands, keyed as this client would send it: its
   * endpoint, its credentials' principal, its input) for the whole fleet: it is never answered again, fresh or
   * stale, and the next call sends the command once across the fleet (through the refresh lease), whose output is
   * cached again. The service is not called by `invalidate`.
   *
   * With `rejected`, the output (or the cached "not found" error) this client answered and the caller found
   * wrong, only that answer is ended: an output another caller stored since is kept, so that every caller that
   * saw the wrong answer may invalidate it and the fleet still calls the service once. Without it, whatever is
   * cached for the call when `invalidate` reads it is ended (after a change the caller made itself). Concurrent
   * calls for one answer in this environment share one. Resolves whether a cached output was ended (`false`:
   * none, another one than `rejected`, `rejected` not answered from the cache, or DynamoDB failed: logged).
   * @throws InvalidOptionsError when the command is not one this client caches; what the SDK throws when it
   * cannot resolve the call's endpoint or credentials.
   */
  invalidate(command: object, rejected?: object): Promise<boolean>;
}

/** The structural view of an AWS SDK v3 client that `cacheAwsClient` needs: its middleware stack and resolved config. */
export interface AwsClientLike {
  // The middleware parameter is the SDK's own union of step middlewares, of whichever SDK version the client is.
  readonly middlewareStack: {
    add(middleware: never, options: AbsolutePlacement): void;
    addRelativeTo(middleware: never, options: RelativePlacement): void;
  };
  readonly config: object;
}

/** A handler of the SDK's middleware stack, as the cache's middleware sees it. */
type Handler = (args: HandlerArgs) => Promise<{ output: object; response: unknown }>;
/** What a handler is called with: the command's input (and, from the serialize step on, the request). */
interface HandlerArgs {
  input: object;
}
/** The SDK's handler context: what `cacheAwsClient` reads of it. */
interface HandlerContext {
  clientName?: string;
  commandName?: string;
  inputFilterSensitiveLog?: unknown;
  outputFilterSensitiveLog?: unknown;
  /** The endpoint the SDK resolved for the call (`endpointV2Middleware`, serialize step). */
  endpointV2?: { url?: { href?: string } };
  /** The call's signal, and the credentials it is signed with (`httpAuthSchemeMiddleware`, serialize step). */
  __smithy_context?: { abortSignal?: AbortSignalLike; selectedHttpAuthScheme?: { identity?: object } };
}
type CacheMiddleware = (next: Handler, context: HandlerContext) => Handler;
interface AbsolutePlacement {
  step: 'initialize';
  name: string;
  priority: 'high';
  override: boolean;
  tags: string[];
}
interface RelativePlacement {
  relation: 'after';
  toMiddleware: string;
  name: string;
  override: boolean;
  tags: string[];
}

/** The middleware's name in the client's stack: applying `cacheAwsClient` again replaces it. */
const MIDDLEWARE_NAME = 'dynamoCacheAwsClient';

/** The SDK's middleware that resolves a call's endpoint (every client with an `endpointProvider` has it). */
const ENDPOINT_MIDDLEWARE = 'endpointV2Middleware';

/**
 * The invalidations in flight, by the signal their command is sent with: `invalidate` sends the command through
 * the client, so that the SDK resolves its endpoint and credentials as for a call, and the middleware, seeing the
 * signal, ends the cached output of its key instead of calling the service. The signal is aborted already: a
 * command that missed the middleware fails before it is sent.
 */
const INVALIDATIONS = new WeakMap<object, Invalidation>();

/** An invalidation on its way through the client: the answer it ends (by version, see `versionOf`; absent: any), and whether it did. */
interface Invalidation {
  readonly rejected?: { readonly version: string | undefined };
  ended?: boolean;
}

/**
 * The value each output (or error) a client answered came from, as the cache stores it: what `invalidate` is
 * told was wrong. Held only as long as the output is.
 */
const ANSWERED = new WeakMap<object, unknown>();

/** The reason a bypass record gives for an output that carries secrets. */
const SECRET_BYPASS = 'secret';

/** One command's settings, checked and resolved. */
interface CommandPlan {
  readonly name: string;
  readonly policy: GetOrSetOptions;
  readonly negativeTtlSeconds: number;
  readonly key: ((input: any) => string) | undefined;
  readonly maxBodyBytes: number;
  readonly plaintextAllowed: boolean;
  readonly principal: PrincipalRule;
}

const OPTION_NAMES = new Set([
  'ttlSeconds',
  'staleWhileRevalidateSeconds',
  'staleIfErrorSeconds',
  'negativeTtlSeconds',
  'key',
  'lease',
  'maxBodyBytes',
  'allowPlaintext',
  'shareAcrossPrincipals',
  'dangerouslyAllowUnsafeCommand',
]);

/**
 * Caches the reads of an AWS SDK v3 client in a `DynamoCache`, for the whole fleet: adds a middleware to the
 * client's `middlewareStack` and returns the same client. The commands listed in `commands` are answered from
 * the cache; on a miss one caller across every execution environment calls the service (the refresh lease)
 * and stores its output; when the service throttles or briefly fails, a stale output within
 * `staleIfErrorSeconds` is answered instead. Any other command passes through untouched.
 *
 * An output is keyed by everything that decides it: the endpoint the SDK resolved for the call (however it
 * was configured: `endpoint`, `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, a profile's `endpoint_url`),
 * the caller's principal (see `principal`), and the input. A caller never receives an output that its own
 * credentials could not have obtained, unless a command is `shareAcrossPrincipals`.
 *
 * Outputs come back as the SDK returns them, `$metadata` included (with `cache`: see {@link AwsCacheStatus}),
 * `Date`s as `Date`s, and a streaming body (S3 `GetObject`'s `Body`) as a fresh SDK stream. Conditional reads
 * (`IfMatch`, `IfNoneMatch`, `IfModifiedSince`, `IfUnmodifiedSince`) and strongly consistent DynamoDB reads
 * (`ConsistentRead`, per table in `BatchGetItem` too) always go to the service. An output that carries
 * secrets is stored only when the cache has `encryption` or the command allows plaintext.
 *
 * The client gets `invalidate(command)` (see {@link CachedAwsClient}) to end a cached output after a change.
 *
 * @example
 * const s3 = cacheAwsClient(new S3Client({}), { cache, commands: { GetObjectCommand: { ttlSeconds: 300, staleIfErrorSeconds: 3600 } } });
 * @throws InvalidOptionsError for bad options, a command that is not a plain read or mints what it answers,
 *   or a command whose every answer holds a member the AWS SDK marks sensitive (Secrets Manager
 *   `GetSecretValue`, Cognito `AdminGetUser`) on a cache without `encryption` and without `allowPlaintext`.
 */
export function cacheAwsClient<TClient extends AwsClientLike>(client: TClient, options: CacheAwsClientOptions): TClient & CachedAwsClient {
  if (client === null || typeof client !== 'object' || typeof client.middlewareStack?.add !== 'function' || typeof client.middlewareStack.addRelativeTo !== 'function') {
    throw new InvalidOptionsError('cacheAwsClient needs an AWS SDK v3 client (an object with a middlewareStack)');
  }
  if (options === null || typeof options !== 'object') throw new InvalidOptionsError('cacheAwsClient options must be an object');
  assertKnownOptions('cacheAwsClient options', options, ['cache', 'commands', 'principal']);
  const { cache, commands, principal } = options;
  // By its brand, not instanceof: a cache from another copy of the package (a layer's, a bundle's) is one too.
  if (!DynamoCache.isDynamoCache(cache)) throw new InvalidOptionsError('cacheAwsClient options.cache must be a DynamoCache');
  if (commands === null || typeof commands !== 'object' || Object.keys(commands).length === 0) {
    throw new InvalidOptionsError('cacheAwsClient options.commands must name at least one command, e.g. { GetObjectCommand: { ttlSeconds: 60 } }');
  }
  if (principal !== undefined && (typeof principal !== 'string' || principal === '')) {
    throw new InvalidOptionsError("cacheAwsClient options.principal must be a non-empty string naming the authority of the client's credentials");
  }
  const serviceId = (client.config as { serviceId?: unknown }).serviceId;
  const plans = new Map(Object.entries(commands).map(([name, entry]) => [name, planOf(name, entry, cache, serviceId, principal)]));
  const cachingMiddleware = new AwsReadCache(cache, client.config, plans);
  const middleware: CacheMiddleware = (next, context) => (args) => cachingMiddleware.handle(next, context, args);
  const placement = { name: MIDDLEWARE_NAME, override: true, tags: ['DYNAMO_CACHE'] };
  if (typeof (client.config as { endpointProvider?: unknown }).endpointProvider === 'function') {
    // Right after the SDK resolved the call's endpoint and credentials (httpAuthSchemeMiddleware, then
    // endpointV2Middleware), before anything serializes, signs, retries or sends it: the input and the output
    // are the caller's (the DynamoDB document client translates them further down).
    client.middlewareStack.addRelativeTo(middleware as never, { ...placement, relation: 'after', toMiddleware: ENDPOINT_MIDDLEWARE });
  } else {
    // A client from before endpoint rule sets resolves its endpoint and credentials from its config alone.
    client.middlewareStack.add(middleware as never, { ...placement, step: 'initialize', priority: 'high' });
  }
  const invalidate = (command: object, rejected?: object) => cachingMiddleware.invalidate(client as unknown as { send?: unknown }, command, rejected);
  // Not enumerable, as the SDK's own methods; applying cacheAwsClient again replaces it with the new middleware's.
  Object.defineProperty(client, 'invalidate', { value: invalidate, configurable: true, writable: true, enumerable: false });
  return client as TClient & CachedAwsClient;
}

/** How the output of a cached command was answered (`$metadata.cache`), or `undefined` for any other output. */
export function awsCacheStatusOf(output: { $metadata?: object }): AwsCacheStatus | undefined {
  return (output.$metadata as { cache?: AwsCacheStatus } | undefined)?.cache;
}

function planOf(name: string, entry: CachedCommandOptions, cache: DynamoCache, serviceId: unknown, label: string | undefined): CommandPlan {
  const where = `commands.${name}`;
  if (!/^[A-Z][A-Za-z0-9]*Command$/.test(name)) {
    throw new InvalidOptionsError(`${where}: commands are named by their class, as in GetObjectCommand or AdminGetUserCommand`);
  }
  if (entry === null || typeof entry !== 'object') throw new InvalidOptionsError(`${where} must be an object such as { ttlSeconds: 60 }`);
  const unknown = Object.keys(entry).filter((option) => !OPTION_NAMES.has(option));
  if (unknown.length > 0) throw new InvalidOptionsError(`${where}: unknown option ${unknown.join(', ')}`);
  const operation = operationOf(serviceId, name);
  const hardRefusal = hardRefusalOf(name, operation);
  if (hardRefusal !== undefined) throw new InvalidOptionsError(`${where}: ${hardRefusal}`);
  const unsafe = booleanOption(`${where}.dangerouslyAllowUnsafeCommand`, entry.dangerouslyAllowUnsafeCommand ?? false);
  const refusal = refusalOf(name, operation);
  if (refusal !== undefined && !unsafe) throw new InvalidOptionsError(`${where}: ${refusal}`);
  const plaintextAllowed = cache.encrypted || booleanOption(`${where}.allowPlaintext`, entry.allowPlaintext ?? false);
  const sensitive = sensitiveAnswerOf(operation);
  if (sensitive !== undefined && !plaintextAllowed) {
    throw new InvalidOptionsError(
      `${where}: every answer holds ${sensitive}, which the AWS SDK marks sensitive, so none could be stored in clear; configure the cache's encryption, or set allowPlaintext: true to store it in clear`,
    );
  }
  const shared = booleanOption(`${where}.shareAcrossPrincipals`, entry.shareAcrossPrincipals ?? false);
  const identity = isIdentityOperation(operation);
  if (identity && (shared || entry.key !== undefined)) {
    throw new InvalidOptionsError(
      `${where}: ${name} answers about the caller's own credentials, so it is keyed by them and by its whole input: ${shared ? 'shareAcrossPrincipals' : 'a key function'} would hand one caller's identity to another`,
    );
  }
  if (entry.key !== undefined && typeof entry.key !== 'function') throw new InvalidOptionsError(`${where}.key must be a function of the input`);
  if (entry.lease !== undefined) resolveLease(`${where}.lease`, entry.lease, LEASE_DEFAULTS);
  const optional = (option: 'staleWhileRevalidateSeconds' | 'staleIfErrorSeconds') =>
    entry[option] === undefined ? {} : { [option]: nonNegativeNumber(`${where}.${option}`, entry[option]) };
  return {
    name,
    policy: {
      ttlSeconds: positiveNumber(`${where}.ttlSeconds`, entry.ttlSeconds),
      ...optional('staleWhileRevalidateSeconds'),
      ...optional('staleIfErrorSeconds'),
      ...(entry.lease === undefined ? {} : { lease: entry.lease }),
    },
    negativeTtlSeconds: nonNegativeNumber(`${where}.negativeTtlSeconds`, entry.negativeTtlSeconds ?? 0),
    key: entry.key,
    maxBodyBytes: positiveInteger(`${where}.maxBodyBytes`, entry.maxBodyBytes ?? cache.maxValueBytes),
    plaintextAllowed,
    principal: { label, exact: identity, shared },
  };
}

/** A call answered by the service: what the middleware returns. */
type HandlerResult = Awaited<ReturnType<Handler>>;

/** What a fetch leaves: the value to store, whether it is the output (or a bypass), and the output to answer. */
interface Outcome {
  readonly stored: Json | Uint8Array;
  readonly cached: boolean;
  readonly output: Record<string, unknown>;
}

/** The middleware's work, for one client: answers cached commands from the cache, fetching once across the fleet. */
class AwsReadCache {
  readonly #cache: DynamoCache;
  readonly #config: object;
  readonly #plans: ReadonlyMap<string, CommandPlan>;
  readonly #mixin: StreamMixin | undefined;
  /** Warnings already given, so that a misconfiguration is logged once per command, not per call. */
  readonly #warned = new Set<string>();
  /** Invalidations in flight, by cache key (and the version of the answer they end): concurrent ones share one. */
  readonly #invalidating = new Map<string, Promise<boolean>>();

  constructor(cache: DynamoCache, config: object, plans: ReadonlyMap<string, CommandPlan>) {
    this.#cache = cache;
    this.#config = config;
    this.#plans = plans;
    this.#mixin = streamMixinOf(config);
  }

  /** `CachedAwsClient.invalidate`: sends `command` through the client, marked, for `handle` to end its cached output. */
  async invalidate(client: { send?: unknown }, command: object, rejected?: object): Promise<boolean> {
    if (typeof client.send !== 'function') throw new InvalidOptionsError('invalidate needs an AWS SDK v3 client with send()');
    if (rejected !== undefined && (typeof rejected !== 'object' || rejected === null)) throw new InvalidOptionsError('invalidate: rejected must be the output (or error) the client answered');
    const marker = new AbortController();
    marker.abort(new Error('dynamo-cache: an invalidation, never sent to the service'));
    const invalidation: Invalidation = rejected === undefined ? {} : { rejected: { version: ANSWERED.has(rejected) ? versionOf(ANSWERED.get(rejected)) : undefined } };
    INVALIDATIONS.set(marker.signal, invalidation);
    try {
      await (client.send as (command: object, options: object) => Promise<unknown>).call(client, command, { abortSignal: marker.signal });
    } catch (error) {
      if (invalidation.ended !== undefined || !isAbortError(error)) throw error;
    }
    if (invalidation.ended === undefined) throw new InvalidOptionsError("invalidate: the command did not reach cacheAwsClient's middleware (another client's command?)");
    return invalidation.ended;
  }

  async handle(next: Handler, context: HandlerContext, args: HandlerArgs): Promise<HandlerResult> {
    const marked = context.__smithy_context?.abortSignal;
    const invalidation = marked === undefined ? undefined : INVALIDATIONS.get(marked);
    if (invalidation !== undefined) return this.#invalidate(context, args, invalidation);
    const plan = context.commandName === undefined ? undefined : this.#plans.get(context.commandName);
    // The cache's own requests, when it shares this DynamoDB client: caching them would recurse.
    if (plan === undefined || this.#isCacheTable(args.input as Record<string, unknown>)) return next(args);
    const signal = context.__smithy_context?.abortSignal;
    if (signal?.aborted) throw abortError(signal);
    const input = args.input as Record<string, unknown>;
    if (wantsLiveAnswer(input)) return this.#bypass(next, args);
    if (!plan.plaintextAllowed) {
      const secrets = redactedMembers(input, context.inputFilterSensitiveLog);
      if (secrets.length > 0) {
        this.#secretNotStored(plan, `its input carries ${secrets.join(', ')}`);
        return this.#bypass(next, args);
      }
    }
    let key: string;
    try {
      key = await this.#keyOf(context, plan, input);
    } catch (error) {
      this.#warnOnce(`${plan.name}:key`, `dynamo-cache: ${plan.name} input cannot be keyed; calling the service uncached`, error);
      return this.#bypass(next, args);
    }
    const acquisition: Acquisition<unknown> = await underSignal(signal, (own) => this.#cache.acquire(key, own === undefined ? plan.policy : { ...plan.policy, signal: own }), (late) => {
      if (!late.found) return late.abandon();
    });
    if (!acquisition.found) return this.#fetch(acquisition, plan, next, context, args);
    let record: CachedRecord;
    try {
      record = decodeRecord(acquisition.value);
    } catch (error) {
      this.#cache.logger.warn('dynamo-cache: cached SDK output unreadable; calling the service', { command: plan.name, errorMessage: (error as Error).message });
      return this.#bypass(next, args);
    }
    if (record.kind === 'error') throw answered(rebuildError(record.error, { cache: 'hit' }), acquisition.value);
    if (record.kind === 'bypass' && record.reason === SECRET_BYPASS) this.#secretNotStored(plan);
    const answer = this.#answer(record, acquisition.stale ? 'stale' : 'hit', acquisition.value);
    return answer ?? this.#bypass(next, args);
  }

  /** Ends the cached output of a marked command's key, without calling the service. */
  async #invalidate(context: HandlerContext, args: HandlerArgs, invalidation: Invalidation): Promise<HandlerResult> {
    const plan = context.commandName === undefined ? undefined : this.#plans.get(context.commandName);
    const input = args.input as Record<string, unknown>;
    if (plan === undefined || this.#isCacheTable(input)) {
      throw new InvalidOptionsError(`invalidate: ${context.commandName ?? 'the command'} is not cached by this client (cached: ${[...this.#plans.keys()].join(', ')})`);
    }
    // A cache from an older copy of the package (a layer's, a bundle's) cannot end a value.
    if (typeof (this.#cache as Partial<Pick<DynamoCache, 'invalidate'>>).invalidate !== 'function') throw new InvalidOptionsError('invalidate needs a DynamoCache of a version that has invalidate()');
    const key = await this.#keyOf(context, plan, input);
    const { rejected } = invalidation;
    if (rejected !== undefined && rejected.version === undefined) {
      // Not an answer from the cache: nothing of it is cached to end.
      invalidation.ended = false;
    } else {
      const id = rejected === undefined ? key : `${key}\n${rejected.version}`;
      let pending = this.#invalidating.get(id);
      if (pending === undefined) {
        const ifValue = rejected === undefined ? undefined : (value: unknown) => versionOf(value) === rejected.version;
        pending = this.#cache.invalidate(key, { ifValue }).finally(() => this.#invalidating.delete(id));
        this.#invalidating.set(id, pending);
      }
      invalidation.ended = await pending;
    }
    return { output: { $metadata: {} }, response: undefined };
  }

  /** The caller's turn: calls the service, stores what can be stored, answers stale on throttling. */
  async #fetch(turn: FetchTurn<unknown>, plan: CommandPlan, next: Handler, context: HandlerContext, args: HandlerArgs): Promise<HandlerResult> {
    let result: HandlerResult;
    let outcome: Outcome;
    try {
      result = await next(args);
      outcome = await this.#prepare(result.output as Record<string, unknown>, plan, context);
    } catch (error) {
      return this.#recover(turn, plan, error);
    }
    try {
      // A bypass is remembered for the command's TTL, never answered stale.
      await turn.fulfil(outcome.stored, outcome.cached ? undefined : { ttlSeconds: plan.policy.ttlSeconds, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 });
    } catch (error) {
      // The service answered: the caller gets that answer whatever happens to the cache.
      this.#cache.logger.warn('dynamo-cache: SDK output not cached', { command: plan.name, errorMessage: (error as Error).message });
      await turn.abandon().catch(() => {});
    }
    const output = withStatus(outcome.output, outcome.cached ? 'miss' : 'bypass');
    return { ...result, output: outcome.cached ? answered(output, outcome.stored) : output };
  }

  /**
   * What to store for an output (the output itself, or a bypass), and the output to answer: with its
   * streaming body read into memory and replaced by a fresh stream, or handed on untouched.
   */
  async #prepare(output: Record<string, unknown>, plan: CommandPlan, context: HandlerContext): Promise<Outcome> {
    const bypass = (reason: string, answer = output): Outcome => ({ stored: encodeRecord({ kind: 'bypass', reason }), cached: false, output: answer });
    const secrets = plan.plaintextAllowed ? [] : redactedMembers(output, context.outputFilterSensitiveLog);
    if (secrets.length > 0) {
      this.#secretNotStored(plan, `its output carries ${secrets.join(', ')}`);
      return bypass(SECRET_BYPASS);
    }
    const member = Object.keys(output).find((name) => isStreamingBody(output[name]));
    let record: CachedRecord = { kind: 'output', output };
    let answer = output;
    if (member !== undefined) {
      const mixin = this.#mixin;
      if (mixin === undefined) return bypass('streaming body without the SDK stream mixin');
      const declared = output.ContentLength;
      if (typeof declared === 'number' && declared > plan.maxBodyBytes) return bypass('body larger than maxBodyBytes');
      const read = await readBody(output[member], plan.maxBodyBytes, mixin);
      if (!read.complete) return bypass('body larger than maxBodyBytes', { ...output, [member]: read.body });
      const { [member]: _stream, ...rest } = output;
      record = { kind: 'output', output: rest, body: { member, bytes: read.bytes } };
      answer = { ...output, [member]: bodyOf(read.bytes, mixin) };
    }
    let stored: Json | Uint8Array;
    try {
      stored = encodeRecord(record);
    } catch (error) {
      this.#warnOnce(`${plan.name}:encode`, `dynamo-cache: ${plan.name} output is not plain data; not cached`, error);
      return bypass('output not plain data', answer);
    }
    const bytes = stored instanceof Uint8Array ? stored.byteLength : Buffer.byteLength(JSON.stringify(stored));
    if (bytes > this.#cache.maxValueBytes) return bypass('output larger than the cache maxValueBytes', answer);
    return { stored, cached: true, output: answer };
  }

  /** The service failed: a negative entry for "not found", a stale output for throttling, the error otherwise. */
  async #recover(turn: FetchTurn<unknown>, plan: CommandPlan, error: unknown): Promise<HandlerResult> {
    const notFound = plan.negativeTtlSeconds > 0 ? notFoundError(error) : undefined;
    if (notFound !== undefined) {
      const stored = encodeRecord({ kind: 'error', error: notFound });
      await turn.fulfil(stored, { ttlSeconds: plan.negativeTtlSeconds, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 }).catch(() => turn.abandon().catch(() => {}));
      throw typeof error === 'object' && error !== null ? answered(error, stored) : error;
    }
    if (!isThrottlingOrTransient(error)) {
      await turn.abandon();
      throw error;
    }
    const fallback = await turn.fail(error);
    let stale: HandlerResult | undefined;
    try {
      stale = fallback === undefined ? undefined : this.#answer(decodeRecord(fallback.value), 'stale', fallback.value);
    } catch {
      // An unreadable stale value is no answer: the service's error stands.
    }
    if (stale === undefined) throw error;
    return stale;
  }

  /** The answer from a cached output (a fresh stream for its body), or `undefined` for a bypass record; `stored` is the value it came from. */
  #answer(record: CachedRecord, status: AwsCacheStatus, stored: unknown): HandlerResult | undefined {
    if (record.kind !== 'output' || (record.body !== undefined && this.#mixin === undefined)) return undefined;
    const output = { ...record.output };
    if (record.body !== undefined) output[record.body.member] = bodyOf(record.body.bytes, this.#mixin!);
    return { output: answered(withStatus(output, status), stored), response: undefined };
  }

  async #bypass(next: Handler, args: HandlerArgs): Promise<HandlerResult> {
    const result = await next(args);
    return { ...result, output: withStatus(result.output as Record<string, unknown>, 'bypass') };
  }

  /** The cache key of a call, from inside the SDK's stack, where its endpoint and credentials are resolved. */
  async #keyOf(context: HandlerContext, plan: CommandPlan, input: Record<string, unknown>): Promise<string> {
    return requestKey(await this.#scope(context, plan), input, plan.key?.(input));
  }

  /** What, besides the input, the answer depends on: the client, its region, the endpoint the call goes to, and whose authority it carries. */
  async #scope(context: HandlerContext, plan: CommandPlan): Promise<RequestScope> {
    const config = this.#config as { region?: unknown; endpoint?: unknown; credentials?: unknown };
    const region = typeof config.region === 'function' ? await config.region() : config.region;
    const auth = context.__smithy_context?.selectedHttpAuthScheme;
    // A client older than the SDK's auth-scheme and endpoint resolution signs with its config's credentials, and sends to its config's endpoint.
    const identity = (auth !== undefined ? auth.identity : typeof config.credentials === 'function' ? await config.credentials() : undefined) as CallIdentity | undefined;
    const principal = principalOf(identity, plan.principal);
    if (principal.kind === 'session') {
      this.#warnOnce(
        'principal:session',
        `dynamo-cache: ${context.clientName ?? 'the client'} signs with temporary credentials that are not the Lambda function's own, so its cached outputs are shared only by callers with the same credentials (one session); set cacheAwsClient's principal option to a name for the authority those credentials carry (the role, the tenant) to share them across the fleet`,
      );
    }
    let endpoint = context.endpointV2?.url?.href;
    if (endpoint === undefined && typeof config.endpoint === 'function') {
      const { protocol, hostname, port, path } = (await config.endpoint()) as { protocol: string; hostname: string; port?: number; path?: string };
      endpoint = `${protocol}//${hostname}${port === undefined ? '' : `:${port}`}${path ?? ''}`;
    }
    return { clientName: context.clientName ?? '', region: typeof region === 'string' ? region : '', endpoint: endpoint ?? '', principal: principal.id, commandName: plan.name };
  }

  #isCacheTable(input: Record<string, unknown>): boolean {
    const table = this.#cache.tableName;
    return input.TableName === table || Object.hasOwn((input.RequestItems as object | undefined) ?? {}, table);
  }

  /** A call not stored because it carries a secret: counted in `stats()`, and the fix named once per command. */
  #secretNotStored(plan: CommandPlan, what?: string): void {
    // A cache from an older copy of the package may not count it.
    (this.#cache as Partial<Pick<DynamoCache, 'count'>>).count?.('secretsNotStored');
    if (what === undefined) return;
    this.#warnOnce(
      `${plan.name}:secret`,
      `dynamo-cache: ${plan.name} not cached: ${what}, which the AWS SDK marks sensitive; configure the cache's encryption, or set allowPlaintext: true for the command to store it in clear`,
    );
  }

  #warnOnce(id: string, message: string, error?: unknown): void {
    if (this.#warned.has(id)) return;
    this.#warned.add(id);
    this.#cache.logger.warn(message, error === undefined ? {} : { errorMessage: (error as Error).message });
  }
}

/** `answer`, remembered as answered from the stored value `stored` (see `ANSWERED`). */
function answered<T extends object>(answer: T, stored: unknown): T {
  ANSWERED.set(answer, stored);
  return answer;
}

/** What tells one stored value from another: its JSON text, or its bytes' SHA-256. */
function versionOf(stored: unknown): string {
  return stored instanceof Uint8Array ? `bytes:${createHash('sha256').update(stored).digest('base64url')}` : `json:${JSON.stringify(stored)}`;
}

function isAbortError(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'AbortError';
}

/** The output with `$metadata.cache` set. */
function withStatus(output: Record<string, unknown>, status: AwsCacheStatus): Record<string, unknown> {
  return { ...output, $metadata: { ...(output.$metadata as object | undefined), cache: status } };
}

