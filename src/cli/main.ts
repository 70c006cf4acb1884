/**
 * `dynamo-cache`: look into and operate a cache table from the command line.
 *
 *   dynamo-cache create-table --table app-cache-dev
 *   dynamo-cache get access_token --table app-cache-dev
 *   dynamo-cache set greeting '{"hello":"world"}' --ttl 300
 *   dynamo-cache set report --file report.json      (or - to read standard input)
 *   dynamo-cache scan --rate 50
 *   dynamo-cache --namespace orders flush --yes
 *   dynamo-cache invalidate --tag user:42 --route 'GET /users' [--soft]
 *   dynamo-cache local --port 8000
 *
 * Exit codes: 0 done, 1 DynamoDB/AWS failed (or did not answer within --timeout), 2 bad arguments or input (a
 * refused write, an unconfirmed flush), 3 (get) no value under the key.
 * The executable is `bin.ts`; this module only defines the program, so tests can run it in-process.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type AttributeValue,
  type DynamoDBClientConfig,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import manifest from '../../package.json' with { type: 'json' };
import { DynamoCache, type CacheItemInfo } from '../cache.ts';
import { InvalidKeyError, InvalidOptionsError, InvalidValueError } from '../errors.ts';
import type { CacheLogger } from '../observability/logger.ts';
import { NAMESPACE_ENV, TABLE_ENV } from '../options.ts';
import { DEFAULT_ATTRIBUTE_NAMES, type AttributeNames } from '../storage/item.ts';
import { invalidateRoutes } from '../middleware/route-tags.ts';
import { assertCacheKeySchema, assertHoldsCacheItems } from './cache-table-check.ts';
import { CliError, EXIT, explain, type FailureContext } from './failures.ts';
import { scanTable, type ScanStats } from './scan-stats.ts';
import { HASH_KEYS_SECRET_ENV, KEYS_ENV, secretsFrom } from './secret-sources.ts';

/** Where the program writes, what it reads, and its environment (replaceable in tests). */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Read by `set <key> -`, and for `flush`'s confirmation on a terminal. */
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

interface GlobalOptions {
  table?: string;
  namespace?: string;
  region?: string;
  profile?: string;
  endpoint?: string;
  json?: boolean;
  key?: string[];
  keyFile?: string;
  writeKey?: string;
  hashKeysSecret?: string;
  hashKeysSecretFile?: string;
  timeout: number;
  keyAttribute: string;
  valueAttribute: string;
  ttlAttribute: string;
}

/** Where a command works: the table, its endpoint, the profile, and the SDK client settings. */
interface Target extends FailureContext {
  readonly tableName: string;
  readonly attributes: AttributeNames;
  readonly clientConfig: DynamoDBClientConfig;
  readonly timeoutSeconds: number;
}

/**
 * How long `create-table` waits for the table, polling every 1 to 2 s: the SDK waiter's default minimum
 * delay (20 s) would make it wait at least 20 s for a table that is active in a few.
 */
const TABLE_WAIT = { maxWaitTime: 120, minDelay: 1, maxDelay: 2 };

/** An option argument that must be a number accepted by `valid`; anything else is a usage error naming the option. */
function numberOption(requirement: string, valid: (value: number) => boolean): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (text.trim() === '' || !valid(value)) throw new InvalidArgumentError(`It must be ${requirement}.`);
    return value;
  };
}

const positiveNumber = (what: string) => numberOption(`a positive number of ${what}`, (value) => value > 0 && Number.isFinite(value));
const positiveInteger = numberOption('a positive integer', (value) => Number.isInteger(value) && value > 0);
const port = numberOption('a port number from 0 to 65535', (value) => Number.isInteger(value) && value >= 0 && value <= 65535);

/** Collects a repeatable option's values. */
const repeatable = (value: string, all: string[] | undefined): string[] => [...(all ?? []), value];

/** Keeps the cache's warnings: when an operation fails open, the last one says why. */
class WarningLog implements CacheLogger {
  readonly warnings: Array<{ message: string; fields: Record<string, unknown> }> = [];
  debug(): void {}
  info(): void {}
  warn(message: string, ...extra: unknown[]): void {
    this.warnings.push({ message, fields: Object.assign({}, ...extra.filter((e) => typeof e === 'object')) });
  }
  error(message: string, ...extra: unknown[]): void {
    this.warn(message, ...extra);
  }
}

/** Runs the program with `argv` (user arguments only) and resolves its exit code. */
export async function run(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }): Promise<number> {
  const print = (text: string) => io.stdout.write(`${text}\n`);
  let exitCode: number = EXIT.ok;
  const program = new Command('dynamo-cache')
    .description('Look into and operate a dynamo-cache table (real AWS by default, or --endpoint for a local server)')
    .option('--table <name>', `the cache table (default: $${TABLE_ENV})`)
    .option('--namespace <namespace>', `key namespace (default: $${NAMESPACE_ENV})`)
    .option('--region <region>', 'AWS region (default: the SDK chain, AWS_REGION)')
    .option('--profile <name>', 'AWS profile from ~/.aws/config (default: AWS_PROFILE, else the SDK chain)')
    .option('--endpoint <url>', 'DynamoDB endpoint, e.g. http://127.0.0.1:8000 for `dynamo-cache local`')
    .option('--json', 'print JSON for scripts instead of text')
    .option('--key-file <path>', `encryption keys, one <id>=<base64 key> per line, to read and write encrypted values (also: $${KEYS_ENV})`)
    .option('--key <id=base64>', `an encryption key (repeatable; visible in the process list: prefer --key-file or $${KEYS_ENV})`, repeatable)
    .option('--write-key <id>', 'the encryption key that encrypts `set` values (default: the first key)')
    .option('--hash-keys-secret-file <path>', `the HMAC secret, for a cache with hashed keys (also: $${HASH_KEYS_SECRET_ENV})`)
    .option('--hash-keys-secret <secret>', 'the HMAC secret (visible in the process list: prefer the file or the environment)')
    .option('--timeout <seconds>', 'longest wait for each DynamoDB request (3 attempts at most)', positiveNumber('seconds'), 10)
    .option('--key-attribute <name>', 'partition key attribute', DEFAULT_ATTRIBUTE_NAMES.key)
    .option('--value-attribute <name>', 'value attribute', DEFAULT_ATTRIBUTE_NAMES.value)
    .option('--ttl-attribute <name>', 'expiry (TTL) attribute', DEFAULT_ATTRIBUTE_NAMES.expiresAt)
    .version(manifest.version, '-V, --version', 'print the version of dynamo-cache')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // A usage error is one line, like every other error of this program.
      outputError: (text, write) => write(`dynamo-cache: ${text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()} (see dynamo-cache --help)\n`),
    })
    .exitOverride();

  const globals = (command: Command) => command.optsWithGlobals<GlobalOptions>();
  const output = (command: Command, human: string, data: unknown) => print(globals(command).json ? JSON.stringify(data, null, 2) : human);

  program
    .command('create-table')
    .description('create the table the library expects (String key, on demand, the AWS managed KMS key as template.yaml) and turn TTL on')
    .option('--wait', 'wait until the table is active, polling every 1-2 s, then turn TTL on (default)')
    .option('--no-wait', 'return as soon as DynamoDB accepted the request (TTL is then not turned on)')
    .action(async (options: { wait?: boolean }, command: Command) => {
      const context = target(globals(command), io.env);
      const { key, expiresAt } = context.attributes;
      const client = new DynamoDBClient(context.clientConfig);
      try {
        await client.send(
          new CreateTableCommand({
            TableName: context.tableName,
            KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
            AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
            BillingMode: 'PAY_PER_REQUEST',
            SSESpecification: { Enabled: true },
          }),
        );
        let ttl: string;
        if (options.wait === false) {
          ttl = `not turned on (--no-wait): once the table is active, run aws dynamodb update-time-to-live --table-name ${context.tableName} --time-to-live-specification Enabled=true,AttributeName=${expiresAt}`;
        } else {
          await waitUntilTableExists({ client, ...TABLE_WAIT }, { TableName: context.tableName });
          ttl = await turnTtlOn(client, context.tableName, expiresAt);
        }
        output(command, `created table ${context.tableName} (key ${key}, TTL on ${expiresAt}: ${ttl})`, { table: context.tableName, keyAttribute: key, ttlAttribute: expiresAt, ttl });
      } catch (error) {
        throw explain(error, context);
      } finally {
        client.destroy();
      }
    });

  program
    .command('get <key>')
    .description('show the value under a key with its metadata: state, expiry, size, encoding, encryption')
    .option('--raw', 'show the DynamoDB item itself, every attribute as plain JSON (binary as base64)')
    .option('--include-expired', 'show the value of an expired item that DynamoDB has not deleted yet, and exit 0')
    .action(async (key: string, options: { raw?: boolean; includeExpired?: boolean }, command: Command) => {
      const { cache, client, log, context } = await openCache(globals(command), io.env);
      const found = await cache.inspect(key);
      if (found === undefined) throw failure(log, context);
      // An expired item is no value, as for the library's get: its value is shown only when asked for.
      const hidden = found.state === 'expired' && !options.includeExpired;
      const info: CacheItemInfo = hidden ? withoutValue(found) : found;
      if (options.raw) {
        const item = (await client.send(new GetItemCommand({ TableName: context.tableName, Key: { [context.attributes.key]: { S: info.storageKey } }, ConsistentRead: true }))).Item;
        print(item === undefined ? 'null' : JSON.stringify(await unmarshallItem(item), (_name, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value), 2));
      } else {
        output(command, describe(info, hidden), info);
      }
      if (info.value === undefined) exitCode = EXIT.notFound;
    });

  program
    .command('set <key> [value]')
    .description('store a value: JSON (--raw for a plain string), given as an argument, in a file (--file) or on standard input (-)')
    .option('--ttl <seconds>', 'time to live in seconds', positiveNumber('seconds'), 3300)
    .option('--raw', 'store the value as a plain string, not JSON')
    .option('--file <path>', 'read the value from this file (any size: values over 390 KB are chunked)')
    .option('--force', 'write even into a table holding items that are not cache items')
    .action(async (key: string, argument: string | undefined, options: { ttl: number; raw?: boolean; file?: string; force?: boolean }, command: Command) => {
      const text = await valueText(argument, options.file, io.stdin);
      let value: unknown = text;
      if (!options.raw) {
        try {
          value = JSON.parse(text);
        } catch (error) {
          throw new CliError(`the value is not valid JSON (${(error as Error).message}); use --raw to store it as a string`, EXIT.usage);
        }
      }
      const opened = await openCache(globals(command), io.env);
      const { cache, log, context } = opened;
      await guardWrite(opened, { force: options.force === true, key });
      if (!(await cache.set(key, value, { ttlSeconds: options.ttl }))) throw failure(log, context);
      output(command, `stored ${key} for ${options.ttl} s`, { key, stored: true, ttlSeconds: options.ttl });
    });

  program
    .command('delete <key>')
    .description('delete the value under a key')
    .option('--force', 'delete even in a table holding items that are not cache items')
    .action(async (key: string, options: { force?: boolean }, command: Command) => {
      const opened = await openCache(globals(command), io.env);
      const { cache, log, context } = opened;
      await guardWrite(opened, { force: options.force === true, key });
      if (!(await cache.delete(key))) throw failure(log, context);
      output(command, `deleted ${key}`, { key, deleted: true });
    });

  program
    .command('flush')
    .description('flush a namespace in O(1): start a new generation; old items age out with TTL (asks first on a terminal)')
    .option('--yes', 'flush without asking (scripts: required when not on a terminal)')
    .option('--force', 'flush even in a table holding items that are not cache items')
    .action(async (options: { yes?: boolean; force?: boolean }, command: Command) => {
      const opened = await openCache(globals(command), io.env);
      const { cache, log, context } = opened;
      await guardWrite(opened, { force: options.force === true });
      const generation = (await cache.inspect(GENERATION_PROBE))?.generation;
      if (generation === undefined) throw failure(log, context);
      const consequences = flushConsequences(cache.namespace, generation);
      if (!options.yes) {
        if (!(io.stdin.isTTY && io.stderr.isTTY)) throw new CliError(`flush asks for confirmation, and this is no terminal: pass --yes to flush (${consequences[0]})`, EXIT.usage);
        io.stderr.write(`${consequences.join('\n')}\n`);
        if (!(await confirm(io, 'Flush? Type yes to continue: '))) throw new CliError('not flushed: not confirmed', EXIT.failed);
      }
      if (!(await cache.clear())) throw failure(log, context);
      const namespace = cache.namespace === '' ? '(none)' : cache.namespace;
      output(command, `flushed namespace ${namespace}: other environments see it within their memory tier TTL (30 s by default)`, { namespace: cache.namespace, flushed: true });
    });

  program
    .command('invalidate')
    .description('invalidate every value of tags and the memoized responses of routes, for every function sharing the table and namespace')
    .option('--tag <tag>', 'a tag whose values to invalidate (repeatable)', repeatable)
    .option('--route <route>', 'a route whose memoized responses to invalidate: "GET /users/42", or "GET /users/{id}" for all of them (repeatable)', repeatable)
    .option('--soft', 'soft purge: the values are served stale, within their stale windows, while one caller refreshes each')
    .option('--force', 'write even into a table holding items that are not cache items')
    .action(async (options: { tag?: string[]; route?: string[]; soft?: boolean; force?: boolean }, command: Command) => {
      const { tag: tags = [], route: routes = [] } = options;
      if (tags.length === 0 && routes.length === 0) throw new CliError('nothing to invalidate: give --tag <tag> or --route "GET /path" (each repeatable)', EXIT.usage);
      const mode = options.soft ? 'stale' : 'expire';
      const opened = await openCache(globals(command), io.env);
      const { cache, log, context } = opened;
      await guardWrite(opened, { force: options.force === true });
      const done = (tags.length === 0 || (await cache.invalidateTags(tags, { mode }))) && (routes.length === 0 || (await invalidateRoutes(cache, routes, { mode })));
      if (!done) throw failure(log, context);
      const what = [...tags.map((tag) => `tag ${tag}`), ...routes.map((route) => `route ${route}`)].join(', ');
      const how = options.soft ? ' (soft: served stale while refreshed)' : '';
      output(command, `invalidated ${what}${how}: other environments see it within their memory tier TTL (30 s by default)`, { tags, routes, mode, invalidated: true });
    });

  program
    .command('scan')
    .description('table statistics: items, expired but not deleted, sizes, largest keys, namespaces')
    .option('--rate <units>', 'most read capacity units per second to consume (keeps production traffic safe)', positiveNumber('read units per second'))
    .option('--page-size <items>', 'items per Scan request', positiveInteger, 100)
    .action(async (options: { rate?: number; pageSize: number }, command: Command) => {
      const opts = globals(command);
      const context = target(opts, io.env);
      const client = new DynamoDBClient(context.clientConfig);
      let bar: SingleBar | undefined;
      try {
        const table = await client.send(new DescribeTableCommand({ TableName: context.tableName }));
        if (io.stderr.isTTY && !opts.json) {
          bar = new SingleBar({ stream: io.stderr, format: 'scanning {bar} {value}/{total} items (estimate) {duration}s' });
          bar.start(Math.max(1, table.Table?.ItemCount ?? 1), 0);
        }
        const stats = await scanTable({
          client,
          tableName: context.tableName,
          attributes: context.attributes,
          ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
          ...(options.rate === undefined ? {} : { readUnitsPerSecond: options.rate }),
          pageSize: options.pageSize,
          onProgress: (scanned) => {
            if (bar !== undefined) bar.update(scanned, { total: Math.max(scanned, bar.getTotal()) });
          },
        });
        bar?.stop();
        output(command, formatScan(context.tableName, stats), { table: context.tableName, ...stats });
      } catch (error) {
        bar?.stop();
        throw explain(error, context);
      } finally {
        client.destroy();
      }
    });

  program
    .command('local')
    .description('start the embedded dynalite DynamoDB server for local development (needs the dynalite package)')
    .option('--port <port>', 'port (0: any free port)', port, 8000)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--path <dir>', 'keep data in this folder (default: in memory)')
    .action(async (options: { port: number; host: string; path?: string }) => {
      let dynalite: (options: { path?: string; createTableMs: number }) => import('node:http').Server;
      try {
        dynalite = (await import('dynalite')).default;
      } catch {
        throw new CliError('dynalite is not installed: npm install --save-dev dynalite', EXIT.failed);
      }
      const server = dynalite({ createTableMs: 0, ...(options.path === undefined ? {} : { path: options.path }) });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (error) => reject(new CliError(`cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`)));
        server.listen(options.port, options.host, () => resolve());
      });
      const address = server.address() as import('node:net').AddressInfo;
      const endpoint = `http://${options.host}:${address.port}`;
      print(`dynalite listening on ${endpoint} (Ctrl-C to stop)\n  export AWS_ENDPOINT_URL_DYNAMODB=${endpoint}\n  dynamo-cache create-table --endpoint ${endpoint} --table app-cache`);
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close(() => resolve()));
      });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are exits with code 0; anything else is a usage error, already printed by commander.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const failed = error instanceof InvalidKeyError || error instanceof InvalidValueError || error instanceof InvalidOptionsError ? new CliError(error.message, EXIT.usage) : explain(error, {});
    io.stderr.write(`dynamo-cache: ${failed.message}\n`);
    return failed.exitCode;
  }
}

/** The table, its endpoint and the SDK client settings, from the options and the environment. */
function target(options: GlobalOptions, env: NodeJS.ProcessEnv): Target {
  const tableName = options.table ?? env[TABLE_ENV];
  if (!tableName) throw new CliError(`no table: pass --table or set ${TABLE_ENV}`, EXIT.usage);
  const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL;
  const profile = options.profile ?? (env.AWS_PROFILE || undefined);
  const local = endpoint !== undefined && /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(endpoint);
  const timeoutMs = Math.ceil(options.timeout * 1000);
  const clientConfig: DynamoDBClientConfig = {
    // Every request ends within --timeout: an endpoint that never answers is an error, not a hang.
    requestHandler: { requestTimeout: timeoutMs, connectionTimeout: timeoutMs, throwOnRequestTimeout: true },
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    // A local server needs no real account: supply a region and dummy credentials when none are configured.
    ...(local && !env.AWS_REGION && !env.AWS_DEFAULT_REGION && options.region === undefined ? { region: 'us-east-1' } : {}),
    ...(local && !env.AWS_ACCESS_KEY_ID && profile === undefined ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  };
  const attributes = { key: options.keyAttribute, value: options.valueAttribute, expiresAt: options.ttlAttribute };
  return { tableName, endpoint, profile, attributes, clientConfig, timeoutSeconds: options.timeout };
}

/** A cache opened for one command, with its DynamoDB client, its warnings and where it works. */
interface OpenCache {
  readonly cache: DynamoCache;
  readonly client: DynamoDBClient;
  readonly log: WarningLog;
  readonly context: Target;
}

/**
 * A cache for one command, after checking that the table is there and keyed as a cache table (so a missing
 * table, wrong credentials or another table fail loudly).
 */
async function openCache(options: GlobalOptions, env: NodeJS.ProcessEnv): Promise<OpenCache> {
  const context = target(options, env);
  // Bad input fails before any request: a malformed key is a usage error whatever the table.
  const { keys, hashKeysSecret } = await secretsFrom(options, env);
  const client = new DynamoDBClient({ ...context.clientConfig, maxAttempts: 3 });
  let table: TableDescription | undefined;
  try {
    ({ Table: table } = await client.send(new DescribeTableCommand({ TableName: context.tableName })));
  } catch (error) {
    throw explain(error, context);
  }
  assertCacheKeySchema(table, context.tableName, context.attributes);
  const log = new WarningLog();
  const cache = new DynamoCache({
    tableName: context.tableName,
    client,
    logger: log,
    attributes: context.attributes,
    memory: false,
    timeoutMs: context.timeoutSeconds * 1000,
    breaker: false,
    lease: false,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    ...(keys.size === 0 ? {} : { encryption: { keys: Object.fromEntries(keys), writeKeyId: options.writeKey ?? [...keys.keys()][0]! } }),
    ...(hashKeysSecret === undefined ? {} : { hashKeys: { secret: hashKeysSecret } }),
  });
  return { cache, client, log, context };
}

/** Before a write: refuses a table holding items that are not cache items (unless `force`), judged by a sample and the item under `key`. */
async function guardWrite({ cache, client, context }: OpenCache, options: { force: boolean; key?: string }): Promise<void> {
  if (options.force) return;
  const storageKey = options.key === undefined ? undefined : (await cache.inspect(options.key))?.storageKey;
  try {
    await assertHoldsCacheItems(client, context.tableName, context.attributes, storageKey);
  } catch (error) {
    throw explain(error, context);
  }
}

/** Any key: `flush` inspects one to learn the namespace's current generation. */
const GENERATION_PROBE = 'flush';

/** What a flush of `namespace` at `generation` does, the first line a summary. */
function flushConsequences(namespace: string, generation: number): string[] {
  const next = generation + 1;
  const seen = 'Other environments see the flush within their memory tier TTL (30 s by default); the old items age out through TTL.';
  if (namespace !== '') return [`every value of namespace "${namespace}" becomes unreachable: its keys move to "${namespace}:#dc:g${next}:<key>"`, seen];
  if (generation === 0) {
    return [
      `every key without a namespace moves from "<key>" to "#dc:g${next}:<key>", for good`,
      'The original Python CacheService (and anything else reading "<key>" items) then no longer shares values with this library: neither sees what the other writes. A later flush cannot undo it.',
      'To flush one application, give its values a namespace (--namespace) instead.',
    ];
  }
  return [`every value without a namespace becomes unreachable: keys move from "#dc:g${generation}:<key>" to "#dc:g${next}:<key>"`, seen];
}

/** Asks `question` on the terminal; `true` for yes. */
async function confirm(io: CliIo, question: string): Promise<boolean> {
  const prompt = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

/** Turns TTL on for the table's expiry attribute; a local server without TTL support is reported, not an error. */
async function turnTtlOn(client: DynamoDBClient, tableName: string, attribute: string): Promise<string> {
  try {
    await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: attribute, Enabled: true } }));
    return 'on';
  } catch (error) {
    const name = (error as Error).name;
    if (name !== 'UnknownOperationException' && !/unknown ?operation|not supported/i.test((error as Error).message)) throw error;
    return 'not supported by this endpoint';
  }
}

/** The text `set` stores: its argument, a file (`--file`), or standard input (argument `-`); exactly one of them. */
async function valueText(argument: string | undefined, file: string | undefined, stdin: NodeJS.ReadableStream): Promise<string> {
  if (argument !== undefined && file !== undefined) throw new CliError('give the value as an argument or with --file, not both', EXIT.usage);
  if (file !== undefined) {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new CliError(`cannot read --file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.usage);
    }
  }
  if (argument === undefined) throw new CliError('no value: give it as an argument, with --file <path>, or - to read standard input', EXIT.usage);
  if (argument !== '-') return argument;
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** An item as plain JSON, with `unmarshall` from @aws-sdk/util-dynamodb (an optional peer dependency: only `get --raw` needs it). */
async function unmarshallItem(item: Record<string, AttributeValue>): Promise<Record<string, unknown>> {
  let util: typeof import('@aws-sdk/util-dynamodb');
  try {
    util = await import('@aws-sdk/util-dynamodb');
  } catch {
    throw new CliError('get --raw needs @aws-sdk/util-dynamodb: npm install @aws-sdk/util-dynamodb', EXIT.failed);
  }
  return util.unmarshall(item);
}

/** The item's description without its value (an expired item's value is shown only with --include-expired). */
function withoutValue(info: CacheItemInfo): CacheItemInfo {
  const { value: _hidden, ...rest } = info;
  return rest;
}

/** Why an operation that fails open did not succeed: the cache's last warning, explained. */
function failure(log: WarningLog, context: FailureContext): CliError {
  const last = log.warnings.at(-1);
  if (last === undefined) return new CliError('the operation did not succeed');
  if (last.fields.failure === 'timeout') return explain({ name: 'TimeoutError', message: String(last.fields.errorMessage) }, context);
  if (last.fields.errorName !== undefined) return explain({ name: last.fields.errorName, message: last.fields.errorMessage }, context);
  return new CliError(last.message.replace(/^dynamo-cache: /, ''));
}

function describe(info: CacheItemInfo, hidden = false): string {
  const lines: Array<[string, string]> = [
    ['key', info.key],
    ['stored as', `${info.storageKey}${info.generation > 0 ? `  (namespace generation ${info.generation})` : ''}`],
  ];
  if (info.state === 'absent') return table([...lines, ['state', 'absent: no item under this key']]);
  const expiry = info.expiresAt === undefined ? '' : `, expires ${info.expiresAt.toISOString()} (${relative(info.expiresAt)})`;
  const fresh = info.state === 'stale' && info.freshUntil !== undefined ? `, stale since ${info.freshUntil.toISOString()}` : '';
  lines.push(['state', `${info.state}${fresh}${expiry}`]);
  if (info.encoding !== undefined || info.value !== undefined) {
    const steps = [info.compression === undefined ? 'not compressed' : `compressed ${info.compression}`, info.encryptionKeyId === undefined ? 'not encrypted' : `encrypted with key ${info.encryptionKeyId}`];
    lines.push(['encoding', `${info.encoding ?? 'string (plain, no marker)'}: ${steps.join(', ')}`]);
    lines.push(['size', `${bytes(info.storedBytes)} stored${info.chunks > 0 ? ` in ${info.chunks} chunk items` : ''}`]);
  }
  if (info.lease !== undefined) lines.push(['lease', `held by ${info.lease.owner} until ${info.lease.until.toISOString()}`]);
  if (info.problem !== undefined) {
    const hint = /no encryption keys|unknown key/.test(info.problem) ? `; pass --key ${info.encryptionKeyId ?? '<id>'}=<base64 key> to read it` : '';
    lines.push(['problem', `${info.problem}${hint}`]);
  }
  if (hidden) lines.push(['value', 'none: the item has expired (--include-expired shows what it held)']);
  const text = table(lines);
  if (info.value === undefined) return text;
  const value = info.value instanceof Uint8Array ? `<${info.value.byteLength} bytes> ${Buffer.from(info.value).toString('base64')}` : JSON.stringify(info.value, null, 2);
  return `${text}\nvalue\n${value}`;
}

function formatScan(tableName: string, stats: ScanStats): string {
  const n = (value: number) => value.toLocaleString('en-US');
  const k = stats.kinds;
  return [
    `table ${tableName}: ${n(stats.items)} items, ${bytes(stats.bytes)}, ${n(stats.expiredNotDeleted)} expired but not yet deleted by TTL`,
    `kinds: ${n(k.values)} values, ${n(k.notFound)} cached "not found", ${n(k.leases)} leases, ${n(k.chunks)} chunks, ${n(k.metadata)} namespace metadata, ${n(k.tags)} tag states, ${n(k.foreign)} other`,
    '',
    'size (up to)  items',
    ...stats.sizes.map((bucket) => `${bucket.upTo.padStart(12)}  ${n(bucket.items)}`),
    '',
    'largest keys',
    ...stats.largest.map((entry) => `${bytes(entry.bytes).padStart(12)}  ${entry.key.length > 100 ? `${entry.key.slice(0, 97)}...` : entry.key}`),
    '',
    'namespace                      items        bytes  expired',
    ...stats.namespaces.map((ns) => `${ns.namespace.padEnd(28)} ${n(ns.items).padStart(7)} ${bytes(ns.bytes).padStart(12)} ${n(ns.expired).padStart(8)}`),
    '',
    `scanned in ${(stats.durationMs / 1000).toFixed(1)} s, ${stats.readUnits.toFixed(1)} read units`,
  ].join('\n');
}

function table(lines: Array<[string, string]>): string {
  return lines.map(([label, value]) => `${label.padEnd(10)} ${value}`).join('\n');
}

function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

function relative(date: Date): string {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const text = abs < 120 ? `${abs} s` : abs < 7200 ? `${Math.round(abs / 60)} min` : `${Math.round(abs / 3600)} h`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

