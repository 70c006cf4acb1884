import { abortError, underSignal, type AbortSignalLike } from '../resilience/abort.ts';
import { DynamoCache, type Acquisition, type FetchTurn, type GetOrSetOptions } from '../cache.ts';
import { InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { LEASE_DEFAULTS, booleanOption, nonNegativeNumber, positiveInteger, positiveNumber, resolveLease, type LeaseOptions } from '../options.ts';
import { bodyOf, isStreamingBody, readBody, streamMixinOf, type StreamMixin } from './cached-body.ts';
import { decodeRecord, encodeRecord, type CachedRecord } from './cached-output.ts';
import { isSecretCommand, redactedMembers, refusalOf, secretInputReason, wantsLiveAnswer } from './command-rules.ts';
import { requestKey, type RequestScope } from './request-key.ts';
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
   * Store outputs that carry secrets (members the SDK marks sensitive, Secrets Manager values, SSM parameters
   * read `WithDecryption`) even though the cache has no `encryption`. Default `false`.
   */
  allowPlaintext?: boolean;
  /**
   * Cache a command that is not a plain read (its name does not start with a read verb) or that mints
   * credentials or tokens. Almost always a mistake: callers would share one write's answer, or one caller's
   * credentials. Default `false`.
   */
  dangerouslyAllowUnsafeCommand?: boolean;
}

/** Options of {@link cacheAwsClient}. */
export interface CacheAwsClientOptions {
  /** The cache: its namespace and table are shared by every client and function that uses them. */
  cache: DynamoCache;
  /** The commands to cache, by class name (`GetObjectCommand`); any other command passes through untouched. */
  commands: Readonly<Record<string, CachedCommandOptions>>;
}

/**
 * How a cached command's output was answered, in `output.$metadata.cache`: `hit` (fresh from the cache),
 * `stale` (past its TTL, while another caller refreshes it or because the service failed), `miss` (from the
 * service, now cached), `bypass` (from the service, not cacheable: see the logs).
 */
export type AwsCacheStatus = 'hit' | 'stale' | 'miss' | 'bypass';

/** The structural view of an AWS SDK v3 client that `cacheAwsClient` needs: its middleware stack and resolved config. */
export interface AwsClientLike {
  readonly middlewareStack: { add(middleware: InitializeMiddleware, options: MiddlewareOptions): void };
  readonly config: object;
}

/** An `initialize` step handler, as the SDK's middleware stack calls it. */
type InitializeHandler = (args: { input: object }) => Promise<{ output: object; response: unknown }>;
/** The SDK's handler context: what `cacheAwsClient` reads of it. */
interface HandlerContext {
  clientName?: string;
  commandName?: string;
  inputFilterSensitiveLog?: unknown;
  outputFilterSensitiveLog?: unknown;
  __smithy_context?: { abortSignal?: AbortSignalLike };
}
type InitializeMiddleware = (next: InitializeHandler, context: HandlerContext) => InitializeHandler;
interface MiddlewareOptions {
  step: 'initialize';
  name: string;
  priority: 'high';
  override: boolean;
  tags: string[];
}

/** The middleware's name in the client's stack: applying `cacheAwsClient` again replaces it. */
const MIDDLEWARE_NAME = 'dynamoCacheAwsClient';

/** One command's settings, checked and resolved. */
interface CommandPlan {
  readonly name: string;
  readonly policy: GetOrSetOptions;
  readonly negativeTtlSeconds: number;
  readonly key: ((input: any) => string) | undefined;
  readonly maxBodyBytes: number;
  readonly plaintextAllowed: boolean;
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
  'dangerouslyAllowUnsafeCommand',
]);

/**
 * Caches the reads of an AWS SDK v3 client in a `DynamoCache`, for the whole fleet: adds a middleware to the
 * client's `middlewareStack` and returns the same client. The commands listed in `commands` are answered from
 * the cache; on a miss one caller across every execution environment calls the service (the refresh lease)
 * and stores its output; when the service throttles or briefly fails, a stale output within
 * `staleIfErrorSeconds` is answered instead. Any other command passes through untouched.
 *
 * Outputs come back as the SDK returns them, `$metadata` included (with `cache`: see {@link AwsCacheStatus}),
 * `Date`s as `Date`s, and a streaming body (S3 `GetObject`'s `Body`) as a fresh SDK stream. Conditional reads
 * (`IfMatch`, `IfNoneMatch`, `IfModifiedSince`, `IfUnmodifiedSince`) and DynamoDB `ConsistentRead`s always go
 * to the service. An output that
 * carries secrets is stored only when the cache has `encryption` or the command allows plaintext.
 *
 * @example
 * const s3 = cacheAwsClient(new S3Client({}), { cache, commands: { GetObjectCommand: { ttlSeconds: 300, staleIfErrorSeconds: 3600 } } });
 * @throws InvalidOptionsError for bad options, a command that is not a plain read, or a secret-bearing
 *   command (Secrets Manager `GetSecretValue`) on a cache without `encryption` and without `allowPlaintext`.
 */
export function cacheAwsClient<TClient extends AwsClientLike>(client: TClient, options: CacheAwsClientOptions): TClient {
  if (client === null || typeof client !== 'object' || typeof client.middlewareStack?.add !== 'function') {
    throw new InvalidOptionsError('cacheAwsClient needs an AWS SDK v3 client (an object with a middlewareStack)');
  }
  if (options === null || typeof options !== 'object') throw new InvalidOptionsError('cacheAwsClient options must be an object');
  assertKnownOptions('cacheAwsClient options', options, ['cache', 'commands']);
  const { cache, commands } = options;
  // By its brand, not instanceof: a cache from another copy of the package (a layer's, a bundle's) is one too.
  if (!DynamoCache.isDynamoCache(cache)) throw new InvalidOptionsError('cacheAwsClient options.cache must be a DynamoCache');
  if (commands === null || typeof commands !== 'object' || Object.keys(commands).length === 0) {
    throw new InvalidOptionsError('cacheAwsClient options.commands must name at least one command, e.g. { GetObjectCommand: { ttlSeconds: 60 } }');
  }
  const plans = new Map(Object.entries(commands).map(([name, entry]) => [name, planOf(name, entry, cache)]));
  const cachingMiddleware = new AwsReadCache(cache, client.config, plans);
  client.middlewareStack.add((next, context) => (args) => cachingMiddleware.handle(next, context, args), {
    step: 'initialize',
    name: MIDDLEWARE_NAME,
    priority: 'high',
    override: true,
    tags: ['DYNAMO_CACHE'],
  });
  return client;
}

/** How the output of a cached command was answered (`$metadata.cache`), or `undefined` for any other output. */
export function awsCacheStatusOf(output: { $metadata?: object }): AwsCacheStatus | undefined {
  return (output.$metadata as { cache?: AwsCacheStatus } | undefined)?.cache;
}

function planOf(name: string, entry: CachedCommandOptions, cache: DynamoCache): CommandPlan {
  const where = `commands.${name}`;
  if (!/^[A-Z][A-Za-z0-9]*Command$/.test(name)) {
    throw new InvalidOptionsError(`${where}: commands are named by their class, as in GetObjectCommand or AdminGetUserCommand`);
  }
  if (entry === null || typeof entry !== 'object') throw new InvalidOptionsError(`${where} must be an object such as { ttlSeconds: 60 }`);
  const unknown = Object.keys(entry).filter((option) => !OPTION_NAMES.has(option));
  if (unknown.length > 0) throw new InvalidOptionsError(`${where}: unknown option ${unknown.join(', ')}`);
  const unsafe = booleanOption(`${where}.dangerouslyAllowUnsafeCommand`, entry.dangerouslyAllowUnsafeCommand ?? false);
  const refusal = refusalOf(name);
  if (refusal !== undefined && !unsafe) throw new InvalidOptionsError(`${where}: ${refusal}`);
  const plaintextAllowed = cache.encrypted || booleanOption(`${where}.allowPlaintext`, entry.allowPlaintext ?? false);
  if (isSecretCommand(name) && !plaintextAllowed) {
    throw new InvalidOptionsError(`${where}: its output is a secret; configure the cache's encryption, or set allowPlaintext: true to store it in clear`);
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
  };
}

/** A call answered by the service: what the middleware returns. */
type HandlerResult = Awaited<ReturnType<InitializeHandler>>;

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

  constructor(cache: DynamoCache, config: object, plans: ReadonlyMap<string, CommandPlan>) {
    this.#cache = cache;
    this.#config = config;
    this.#plans = plans;
    this.#mixin = streamMixinOf(config);
  }

  async handle(next: InitializeHandler, context: HandlerContext, args: { input: object }): Promise<HandlerResult> {
    const plan = context.commandName === undefined ? undefined : this.#plans.get(context.commandName);
    // The cache's own requests, when it shares this DynamoDB client: caching them would recurse.
    if (plan === undefined || this.#isCacheTable(args.input as Record<string, unknown>)) return next(args);
    const signal = context.__smithy_context?.abortSignal;
    if (signal?.aborted) throw abortError(signal);
    const input = args.input as Record<string, unknown>;
    if (wantsLiveAnswer(input)) return this.#bypass(next, args);
    if (!plan.plaintextAllowed) {
      const secret = secretInputReason(plan.name, input) ?? redactedMembers(input, context.inputFilterSensitiveLog).join(', ');
      if (secret !== '') {
        this.#warnSecret(plan, `its input carries ${secret}`);
        return this.#bypass(next, args);
      }
    }
    let key: string;
    try {
      key = requestKey(await this.#scope(context, plan), input, plan.key?.(input));
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
    if (record.kind === 'error') throw rebuildError(record.error, { cache: 'hit' });
    const answer = this.#answer(record, acquisition.stale ? 'stale' : 'hit');
    return answer ?? this.#bypass(next, args);
  }

  /** The caller's turn: calls the service, stores what can be stored, answers stale on throttling. */
  async #fetch(turn: FetchTurn<unknown>, plan: CommandPlan, next: InitializeHandler, context: HandlerContext, args: { input: object }): Promise<HandlerResult> {
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
    return { ...result, output: withStatus(outcome.output, outcome.cached ? 'miss' : 'bypass') };
  }

  /**
   * What to store for an output (the output itself, or a bypass), and the output to answer: with its
   * streaming body read into memory and replaced by a fresh stream, or handed on untouched.
   */
  async #prepare(output: Record<string, unknown>, plan: CommandPlan, context: HandlerContext): Promise<Outcome> {
    const bypass = (reason: string, answer = output): Outcome => ({ stored: encodeRecord({ kind: 'bypass', reason }), cached: false, output: answer });
    const secrets = plan.plaintextAllowed ? [] : redactedMembers(output, context.outputFilterSensitiveLog);
    if (secrets.length > 0) {
      this.#warnSecret(plan, `its output carries ${secrets.join(', ')}`);
      return bypass('secret');
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
      await turn.fulfil(encodeRecord({ kind: 'error', error: notFound }), { ttlSeconds: plan.negativeTtlSeconds, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 }).catch(() => turn.abandon().catch(() => {}));
      throw error;
    }
    if (!isThrottlingOrTransient(error)) {
      await turn.abandon();
      throw error;
    }
    const fallback = await turn.fail(error);
    let stale: HandlerResult | undefined;
    try {
      stale = fallback === undefined ? undefined : this.#answer(decodeRecord(fallback.value), 'stale');
    } catch {
      // An unreadable stale value is no answer: the service's error stands.
    }
    if (stale === undefined) throw error;
    return stale;
  }

  /** The answer from a cached output (a fresh stream for its body), or `undefined` for a bypass record. */
  #answer(record: CachedRecord, status: AwsCacheStatus): HandlerResult | undefined {
    if (record.kind !== 'output' || (record.body !== undefined && this.#mixin === undefined)) return undefined;
    const output = { ...record.output };
    if (record.body !== undefined) output[record.body.member] = bodyOf(record.body.bytes, this.#mixin!);
    return { output: withStatus(output, status), response: undefined };
  }

  async #bypass(next: InitializeHandler, args: { input: object }): Promise<HandlerResult> {
    const result = await next(args);
    return { ...result, output: withStatus(result.output as Record<string, unknown>, 'bypass') };
  }

  /** What, besides the input, the answer depends on: client, region and custom endpoint. */
  async #scope(context: HandlerContext, plan: CommandPlan): Promise<RequestScope> {
    const config = this.#config as { region?: unknown; endpoint?: unknown; isCustomEndpoint?: unknown };
    const region = typeof config.region === 'function' ? await config.region() : config.region;
    let endpoint: string | undefined;
    if (config.isCustomEndpoint === true && typeof config.endpoint === 'function') {
      const { protocol, hostname, port, path } = (await config.endpoint()) as { protocol: string; hostname: string; port?: number; path?: string };
      endpoint = `${protocol}//${hostname}${port === undefined ? '' : `:${port}`}${path ?? ''}`;
    }
    return { clientName: context.clientName ?? '', region: typeof region === 'string' ? region : '', endpoint, commandName: plan.name };
  }

  #isCacheTable(input: Record<string, unknown>): boolean {
    const table = this.#cache.tableName;
    return input.TableName === table || Object.hasOwn((input.RequestItems as object | undefined) ?? {}, table);
  }

  #warnSecret(plan: CommandPlan, what: string): void {
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

/** The output with `$metadata.cache` set. */
function withStatus(output: Record<string, unknown>, status: AwsCacheStatus): Record<string, unknown> {
  return { ...output, $metadata: { ...(output.$metadata as object | undefined), cache: status } };
}

