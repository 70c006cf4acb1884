import { GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import manifest from '../package.json' with { type: 'json' };
import { DynamoCache } from '../src/cache.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { run as runInProcess, type CliIo } from '../src/cli/main.ts';
import { localClientConfig } from './support/dynalite.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { useDynalite } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js');
/** An environment with no AWS configuration at all: no credentials, no profile, no instance metadata. */
const cleanEnv = { PATH: process.env.PATH, HOME: mkdtempSync(join(tmpdir(), 'dynamo-cache-home-')), AWS_EC2_METADATA_DISABLED: 'true' };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `dynamo-cache` executable in a child process, with `stdin` as its standard input. */
function run(args: string[], env: Record<string, string | undefined> = {}, stdin = ''): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...cleanEnv, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** The library on a table the CLI works on, with a time budget a loaded machine cannot exceed. */
function libraryCache(tableName: string, options: DynamoCacheOptions = {}): DynamoCache {
  return new DynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger(), timeoutMs: 5000, ...options });
}

/** Runs against the test's dynalite with a fresh table (created by the CLI itself), with `globals` on every command. */
async function withTable(...globals: string[]): Promise<{ table: string; cmd: (...args: string[]) => Promise<Result> }> {
  const table = `cli-${randomBytes(4).toString('hex')}`;
  const cmd = (...args: string[]) => run(['--endpoint', db.endpoint, '--table', table, ...globals, ...args]);
  const created = await cmd('create-table');
  expect(created).toMatchObject({ code: 0 });
  return { table, cmd };
}

// The commands run in child processes that mostly wait: run the tests concurrently, each on its own table.
describe.concurrent('dynamo-cache CLI', () => {
  it('create-table creates the table (TTL reported as unsupported by dynalite), and refuses to create it twice', async () => {
    const table = `cli-${randomBytes(4).toString('hex')}`;
    const first = await run(['--endpoint', db.endpoint, '--table', table, 'create-table']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`created table ${table} (key id, TTL on expires_at: not supported by this endpoint)`);
    const again = await run(['--endpoint', db.endpoint, '--table', table, 'create-table']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`table "${table}" already exists`);
  });

  it('set then get shows the value with its metadata, as text and as JSON', async () => {
    const { cmd } = await withTable();
    expect(await cmd('set', 'user:1', '{"name":"Ada","roles":["admin"]}', '--ttl', '120')).toMatchObject({ code: 0, stdout: 'stored user:1 for 120 s\n' });
    const text = await cmd('get', 'user:1');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^key\s+user:1$/m);
    expect(text.stdout).toMatch(/^state\s+fresh, expires \d{4}-\d\d-\d\dT\S+Z \(in (1\d\d s|2 min)\)$/m);
    expect(text.stdout).toMatch(/^encoding\s+json: not compressed, not encrypted$/m);
    expect(text.stdout).toContain('"name": "Ada"');
    const json = await cmd('--json', 'get', 'user:1');
    expect(JSON.parse(json.stdout)).toMatchObject({ key: 'user:1', storageKey: 'user:1', state: 'fresh', value: { name: 'Ada', roles: ['admin'] }, encoding: 'json', chunks: 0 });
  });

  it('get --raw shows the DynamoDB item itself as plain JSON', async () => {
    const { cmd } = await withTable();
    await cmd('--namespace', 'svc', 'set', 'k', '{"a":1}', '--ttl', '60');
    const raw = await cmd('--namespace', 'svc', 'get', 'k', '--raw');
    expect(raw.code).toBe(0);
    const item = JSON.parse(raw.stdout);
    expect(item).toMatchObject({ id: 'svc:k', cached_value: '{"a":1}', dc_enc: 'json' });
    expect(item.expires_at).toBeGreaterThan(Date.now() / 1000);
    expect((await cmd('get', 'absent', '--raw')).stdout.trim()).toBe('null');
  });

  it('set --raw stores a plain string, readable by the library', async () => {
    const { table, cmd } = await withTable();
    expect((await cmd('set', 'token', 'not json at all', '--raw')).code).toBe(0);
    const cache = libraryCache(table);
    expect(await cache.get('token')).toBe('not json at all');
  });

  it('get of a missing key exits 3; delete removes a key', async () => {
    const { cmd } = await withTable();
    const missing = await cmd('get', 'nope');
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/state\s+absent/);
    await cmd('set', 'k', '1');
    expect(await cmd('delete', 'k')).toMatchObject({ code: 0, stdout: 'deleted k\n' });
    expect((await cmd('get', 'k')).code).toBe(3);
  });

  it('get of an encrypted value says how to read it, and reads it with --key', async () => {
    const { table, cmd } = await withTable();
    const key = randomBytes(32);
    const cache = libraryCache(table, { encryption: { keys: { k1: key }, writeKeyId: 'k1' } });
    await cache.set('secret', { password: 'hunter2' });
    const without = await cmd('get', 'secret');
    expect(without.code).toBe(3);
    expect(without.stdout).toMatch(/problem\s+the item is encrypted but no encryption keys are configured; pass --key k1=<base64 key> to read it/);
    expect(without.stdout).not.toContain('hunter2');
    const withKey = await cmd('--key', `k1=${key.toString('base64')}`, 'get', 'secret');
    expect(withKey.code).toBe(0);
    expect(withKey.stdout).toMatch(/encrypted with key k1/);
    expect(withKey.stdout).toContain('hunter2');
  });

  it('flush empties a namespace at once, for the CLI and for a fresh cache', async () => {
    const { table, cmd } = await withTable();
    await cmd('--namespace', 'svc', 'set', 'a', '1');
    await cmd('--namespace', 'other', 'set', 'a', '2');
    const flushed = await cmd('--namespace', 'svc', 'flush', '--yes');
    expect(flushed).toMatchObject({ code: 0 });
    expect(flushed.stdout).toContain('flushed namespace svc');
    expect((await cmd('--namespace', 'svc', 'get', 'a')).code).toBe(3);
    const fresh = libraryCache(table, { namespace: 'svc' });
    expect(await fresh.get('a')).toBeUndefined();
    expect(JSON.parse((await cmd('--json', '--namespace', 'other', 'get', 'a')).stdout).value).toBe(2);
  });

  it('invalidate --tag: the values of the tag are misses for the library; --soft serves them stale while one caller refreshes; --route reaches memoized responses', async () => {
    const { table, cmd } = await withTable('--namespace', 'app');
    const writer = libraryCache(table, { namespace: 'app', memory: false });
    await writer.set('profile:42', { name: 'Ada' }, { tags: ['user:42'], staleWhileRevalidateSeconds: 60 });
    await writer.set('profile:7', { name: 'Grace' }, { tags: ['user:7'], staleWhileRevalidateSeconds: 60 });
    expect(await cmd('invalidate', '--tag', 'user:42')).toMatchObject({
      code: 0,
      stdout: 'invalidated tag user:42: other environments see it within their memory tier TTL (30 s by default)\n',
    });
    const reader = libraryCache(table, { namespace: 'app', memory: false });
    expect(await reader.get('profile:42')).toBeUndefined();
    expect(await reader.get('profile:7')).toEqual({ name: 'Grace' });
    const soft = await cmd('--json', 'invalidate', '--tag', 'user:7', '--soft');
    expect(JSON.parse(soft.stdout)).toEqual({ tags: ['user:7'], routes: [], mode: 'stale', invalidated: true });
    const [refresher, late] = [libraryCache(table, { namespace: 'app', memory: false }), libraryCache(table, { namespace: 'app', memory: false })];
    expect(await late.get('profile:7')).toBeUndefined();
    const turn = await refresher.acquire('profile:7', { staleWhileRevalidateSeconds: 60 }); // wins the lease and holds it
    expect(turn.found).toBe(false);
    expect(await late.getOrSet('profile:7', async () => ({ name: 'new' }), { staleWhileRevalidateSeconds: 60 })).toEqual({ name: 'Grace' });
    expect(late.stats().staleHits).toBe(1);
    if (!turn.found) await turn.abandon();
    const routes = await cmd('invalidate', '--route', 'GET /users/42', '--route', 'GET /users/{id}');
    expect(routes.stdout).toBe('invalidated route GET /users/42, route GET /users/{id}: other environments see it within their memory tier TTL (30 s by default)\n');
    expect(await cmd('invalidate')).toMatchObject({ code: 2, stderr: 'dynamo-cache: nothing to invalidate: give --tag <tag> or --route "GET /path" (each repeatable)\n' });
    expect(await cmd('invalidate', '--tag', '')).toMatchObject({ code: 2, stderr: 'dynamo-cache: invalidateTags() tags[0]: a tag must not be empty\n' });
    expect(await cmd('invalidate', '--route', 'POST /users')).toMatchObject({ code: 2 });
  });

  it('scan reports items, expired-but-not-deleted items, sizes, largest keys and namespaces', async () => {
    const { table, cmd } = await withTable();
    await cmd('--namespace', 'svc', 'set', 'a', '"x"');
    await cmd('--namespace', 'svc', 'set', 'big', JSON.stringify({ blob: randomBytes(30_000).toString('base64') }));
    await cmd('set', 'plain', '1');
    await db.client.send(new PutItemCommand({ TableName: table, Item: { id: { S: 'svc:old' }, cached_value: { S: 'v' }, expires_at: { N: String(Math.floor(Date.now() / 1000) - 3600) } } }));
    const json = await cmd('--json', 'scan');
    expect(json.code).toBe(0);
    const stats = JSON.parse(json.stdout);
    expect(stats).toMatchObject({ table, items: 4, expiredNotDeleted: 1, kinds: { values: 4 } });
    expect(stats.largest[0].key).toBe('svc:big');
    expect(stats.namespaces).toEqual(expect.arrayContaining([expect.objectContaining({ namespace: 'svc', items: 3, expired: 1 }), expect.objectContaining({ namespace: '(none)', items: 1 })]));
    expect(stats.sizes.find((bucket: { upTo: string }) => bucket.upTo === '64 KiB').items).toBe(1);
    const text = await cmd('scan', '--namespace', 'svc');
    expect(text.stdout).toMatch(/^table .+: 3 items, .+, 1 expired but not yet deleted by TTL$/m);
  });

  it('scan --rate paces the scan to the read units given', async () => {
    const { cmd } = await withTable();
    for (let i = 0; i < 4; i++) await cmd('set', `k${i}`, '1');
    const started = performance.now();
    const paced = await cmd('--json', 'scan', '--rate', '2', '--page-size', '1');
    const elapsed = performance.now() - started;
    expect(paced.code).toBe(0);
    // Four pages of at least 0.5 unit each at 2 units per second: the first three are each followed by a pause.
    expect(JSON.parse(paced.stdout).durationMs).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeGreaterThanOrEqual(700);
  });

  it('local starts dynalite on a port, usable by the other commands', async () => {
    const server = spawn(process.execPath, [cli, 'local', '--port', '0'], { env: cleanEnv });
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let output = '';
        server.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match) resolve(match[1]!);
        });
        server.once('exit', (code) => reject(new Error(`local exited with ${code}: ${output}`)));
      });
      const created = await run(['--endpoint', endpoint, '--table', 'local-table', 'create-table']);
      expect(created.code).toBe(0);
      expect((await run(['--endpoint', endpoint, '--table', 'local-table', 'set', 'k', '1'])).code).toBe(0);
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('--version prints the package version', async () => {
    expect(await run(['--version'])).toMatchObject({ code: 0, stdout: `${manifest.version}\n` });
  });

  it('set --file reads the value from a file, so a chunked value (over 390 KB) can be set', async () => {
    const { cmd } = await withTable();
    // Random base64 barely compresses: the stored form stays far above the 390,000-byte chunking threshold.
    const value = { blob: randomBytes(450_000).toString('base64') };
    const file = join(mkdtempSync(join(tmpdir(), 'dynamo-cache-value-')), 'value.json');
    writeFileSync(file, JSON.stringify(value));
    expect(await cmd('set', 'big', '--file', file, '--ttl', '60')).toMatchObject({ code: 0, stdout: 'stored big for 60 s\n' });
    const got = JSON.parse((await cmd('--json', 'get', 'big')).stdout);
    expect(got.chunks).toBeGreaterThan(1);
    expect(got.value).toEqual(value);
  });

  it('set - reads the value from standard input, stored exactly as read (with --raw, a plain string)', async () => {
    const { table, cmd } = await withTable();
    const piped = (...args: string[]) => run(['--endpoint', db.endpoint, '--table', table, ...args], {}, 'line one\nline two\n');
    expect(await piped('set', 'text', '-', '--raw')).toMatchObject({ code: 0, stdout: 'stored text for 3300 s\n' });
    const cache = libraryCache(table);
    expect(await cache.get('text')).toBe('line one\nline two\n');
    expect(await run(['--endpoint', db.endpoint, '--table', table, 'set', 'doc', '-'], {}, '{"a": [1, 2]}')).toMatchObject({ code: 0 });
    expect(JSON.parse((await cmd('--json', 'get', 'doc')).stdout).value).toEqual({ a: [1, 2] });
  });

  it('--key-attribute, --value-attribute and --ttl-attribute apply to every command, for a table created with them', async () => {
    const { table, cmd } = await withTable('--key-attribute', 'pk', '--value-attribute', 'val', '--ttl-attribute', 'ttl');
    expect(await cmd('set', 'k', '{"a":1}', '--ttl', '60')).toMatchObject({ code: 0 });
    expect(JSON.parse((await cmd('--json', 'get', 'k')).stdout)).toMatchObject({ state: 'fresh', value: { a: 1 } });
    const raw = JSON.parse((await cmd('get', 'k', '--raw')).stdout);
    expect(raw).toMatchObject({ pk: 'k', val: '{"a":1}' });
    expect(raw.ttl).toBeGreaterThan(Date.now() / 1000);
    expect(JSON.parse((await cmd('--json', 'scan')).stdout)).toMatchObject({ items: 1, kinds: { values: 1 } });
    expect(await cmd('delete', 'k')).toMatchObject({ code: 0 });
    // Without them the commands address the default attribute `id`, which this table does not have: they say so.
    const mismatched = await run(['--endpoint', db.endpoint, '--table', table, 'set', 'k', '1']);
    expect(mismatched).toMatchObject({
      code: 2,
      stderr: `dynamo-cache: table "${table}" is not a cache table: it is keyed by pk (partition key), and a cache table by one String partition key "id"; if it is a cache table with key attribute pk, pass --key-attribute pk\n`,
    });
  });

  it('get of an expired item (not yet deleted by TTL) is no value, exit 3, unless --include-expired', async () => {
    const { table, cmd } = await withTable();
    const past = Math.floor(Date.now() / 1000) - 60;
    await db.client.send(new PutItemCommand({ TableName: table, Item: { id: { S: 'old' }, cached_value: { S: 'stale secret' }, expires_at: { N: String(past) } } }));
    const text = await cmd('get', 'old');
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^state\s+expired, expires \S+ \(\d+ s ago\)$/m);
    expect(text.stdout).toMatch(/^value\s+none: the item has expired \(--include-expired shows what it held\)$/m);
    expect(text.stdout).not.toContain('stale secret');
    const json = await cmd('--json', 'get', 'old');
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).not.toHaveProperty('value');
    const included = await cmd('get', 'old', '--include-expired');
    expect(included.code).toBe(0);
    expect(included.stdout).toContain('"stale secret"');
  });

  it('create-table polls every 1-2 s for a table that takes a while to become active, or returns at once with --no-wait', async () => {
    // A DynamoDB whose tables take 3 s to become active, behind a proxy that counts the requests.
    const slow = dynalite({ createTableMs: 3000 });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()));
    const proxy = await FaultProxy.start(`http://127.0.0.1:${(slow.address() as AddressInfo).port}`);
    try {
      const started = performance.now();
      const waited = await run(['--endpoint', proxy.endpoint, '--table', 'slow-table', 'create-table']);
      const seconds = (performance.now() - started) / 1000;
      expect(waited.code).toBe(0);
      expect(waited.stdout).toMatch(/^created table slow-table \(key id, TTL on expires_at: /);
      // Polled several times while CREATING; the SDK's default (a 20 s minimum delay) would have polled once and slept 20 s.
      expect(proxy.requests.get('DescribeTable')).toBeGreaterThanOrEqual(2);
      expect(seconds).toBeLessThan(15);
      proxy.requests.clear();
      const noWait = await run(['--endpoint', proxy.endpoint, '--table', 'quick-table', 'create-table', '--no-wait']);
      expect(noWait.code).toBe(0);
      expect(noWait.stdout).toContain('created table quick-table (key id, TTL on expires_at: not turned on (--no-wait): once the table is active, run aws dynamodb update-time-to-live');
      expect(proxy.requests.get('DescribeTable')).toBeUndefined();
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  describe("a table that is not the cache's: writes are refused unless --force", () => {
    /** An application's table keyed by `id`, like the cache's, holding an order. */
    async function applicationTable(): Promise<{ table: string; cmd: (...args: string[]) => Promise<Result>; order: () => Promise<unknown> }> {
      const table = await db.newTable('id');
      await db.client.send(new PutItemCommand({ TableName: table, Item: { id: { S: 'order-1' }, status: { S: 'PAID' }, total: { N: '42' } } }));
      const order = async () => (await db.client.send(new GetItemCommand({ TableName: table, Key: { id: { S: 'order-1' } }, ConsistentRead: true }))).Item;
      return { table, order, cmd: (...args: string[]) => run(['--endpoint', db.endpoint, '--table', table, ...args]) };
    }

    it.each<[string, string[]]>([
      ['set over an application item', ['set', 'order-1', '{"status":"PENDING"}']],
      ['set beside application items', ['set', 'greeting', '"hello"']],
      ['delete', ['delete', 'order-1']],
      ['flush', ['flush', '--yes']],
      ['invalidate', ['invalidate', '--tag', 'user:42']],
    ])('%s is refused, and nothing is written', async (_name, args) => {
      const { table, cmd, order } = await applicationTable();
      const before = await order();
      const refused = await cmd(...args);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(new RegExp(`^dynamo-cache: table "${table}" holds an item (under that key )?that is not a cache item: writing could replace or disturb application data; check --table, or pass --force if this is the cache table\n$`));
      expect(await order()).toEqual(before);
      expect((await db.client.send(new ScanCommand({ TableName: table }))).Items).toHaveLength(1); // no #dc:meta, no value
    });

    it('--force writes all the same; reads need no force', async () => {
      const { cmd } = await applicationTable();
      expect(await cmd('set', 'greeting', '"hello"', '--force')).toMatchObject({ code: 0, stdout: 'stored greeting for 3300 s\n' });
      expect(JSON.parse((await cmd('--json', 'get', 'greeting')).stdout).value).toBe('hello');
    });
  });

  describe('flush says what it does to un-namespaced keys, and asks first', () => {
    it('not on a terminal, flush needs --yes: without it nothing is flushed, and the one line says what it would do', async () => {
      const { cmd } = await withTable();
      await cmd('set', 'access_token', '"shared with the original service"');
      const refused = await cmd('flush');
      expect(refused).toMatchObject({
        code: 2,
        stderr: 'dynamo-cache: flush asks for confirmation, and this is no terminal: pass --yes to flush (every key without a namespace moves from "<key>" to "#dc:g1:<key>", for good)\n',
      });
      expect(JSON.parse((await cmd('--json', 'get', 'access_token')).stdout).value).toBe('shared with the original service');
      expect(await cmd('flush', '--yes')).toMatchObject({ code: 0 });
      expect((await cmd('get', 'access_token')).code).toBe(3);
    });

    it.each([
      ['yes', 0],
      ['no', 1],
    ])('on a terminal it explains the move of un-namespaced keys and asks; answering %s', async (answer, code) => {
      const { table, cmd } = await withTable();
      await cmd('set', 'access_token', '"t"');
      const terminal = inProcessIo(`${answer}\n`, true);
      const exit = await runInProcess(['--endpoint', db.endpoint, '--table', table, 'flush'], terminal.io);
      expect(exit).toBe(code);
      const stderr = terminal.stderr();
      expect(stderr).toContain('every key without a namespace moves from "<key>" to "#dc:g1:<key>", for good');
      expect(stderr).toContain('The original Python CacheService (and anything else reading "<key>" items) then no longer shares values with this library');
      expect(stderr).toContain('Flush? Type yes to continue: ');
      expect((await cmd('get', 'access_token')).code).toBe(answer === 'yes' ? 3 : 0);
      if (answer === 'no') expect(stderr).toMatch(/dynamo-cache: not flushed: not confirmed\n$/);
    });
  });

  describe('encryption keys and the HMAC secret from the environment or a file, never echoed', () => {
    const key = randomBytes(32).toString('base64');
    const secret = 'hmac-secret-of-32-characters-long';
    const files = mkdtempSync(join(tmpdir(), 'dynamo-cache-secrets-'));
    writeFileSync(join(files, 'keys'), `# the cache's keys\nk1=${key}\n`);
    const long = randomBytes(64).toString('base64');
    const short = randomBytes(16).toString('base64');
    writeFileSync(join(files, 'hmac'), `${secret}\n`);

    it.each<[string, string[], Record<string, string>]>([
      ['DYNAMO_CACHE_KEYS and DYNAMO_CACHE_HASH_KEYS_SECRET', [], { DYNAMO_CACHE_KEYS: `k1=${key}`, DYNAMO_CACHE_HASH_KEYS_SECRET: secret }],
      ['--key-file and --hash-keys-secret-file', ['--key-file', join(files, 'keys'), '--hash-keys-secret-file', join(files, 'hmac')], {}],
    ])('from %s', async (_name, args, env) => {
      const { table } = await withTable();
      const cache = libraryCache(table, { encryption: { keys: { k1: key }, writeKeyId: 'k1' }, hashKeys: { secret } });
      await cache.set('secret', { password: 'hunter2' });
      const read = await run(['--endpoint', db.endpoint, '--table', table, ...args, '--json', 'get', 'secret'], env);
      expect(read.code).toBe(0);
      expect(JSON.parse(read.stdout)).toMatchObject({ value: { password: 'hunter2' }, encryptionKeyId: 'k1' });
      const written = await run(['--endpoint', db.endpoint, '--table', table, ...args, 'set', 'other', '"written by the CLI"'], env);
      expect(written.code).toBe(0);
      expect(await cache.get('other')).toBe('written by the CLI');
    });

    it.each<[string, string[], Record<string, string>, RegExp]>([
      ['--key without an id', ['--key', key], {}, /--key must be <id>=<base64 key>, the id 1-64 of A-Z a-z 0-9 _ - \(the value given is not shown\)/],
      ['a key file line without an id', ['--key-file', join(files, 'bad-keys')], {}, /--key-file .*bad-keys line 2 must be <id>=<base64 key>, the id 1-64 of A-Z a-z 0-9 _ - \(the value given is not shown\)/],
      ['DYNAMO_CACHE_KEYS without an id', [], { DYNAMO_CACHE_KEYS: key }, /DYNAMO_CACHE_KEYS entry 1 must be <id>=<base64 key>/],
      // A key whose base64 ends in '==' (16 or 64 bytes) splits at its padding: its "id" is most of the key (an outside review).
      ['a 64-byte key without an id', [], { DYNAMO_CACHE_KEYS: long }, /DYNAMO_CACHE_KEYS entry 1 must be <id>=<base64 key>, the id 1-64 of/],
      ['a 16-byte key without an id', ['--key', short], {}, /--key must be <id>=<base64 key>, the id 1-64 of/],
      ['a key too short', [], { DYNAMO_CACHE_KEYS: `k1=${key.slice(0, 20)}` }, /encryption key "k1" must be 32 bytes/],
    ])('a malformed key (%s) is reported without the key', async (_name, args, env, message) => {
      writeFileSync(join(files, 'bad-keys'), `k0=${randomBytes(32).toString('base64')}\n${key}\n`);
      const result = await run(['--endpoint', db.endpoint, '--table', 't-t-t', ...args, 'get', 'k'], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      for (const secret of [key, long, short]) expect(`${result.stdout}${result.stderr}`).not.toContain(secret.slice(0, 12));
    });
  });

  describe('a request timeout on every command', () => {
    it.each([['get', 'k'], ['set', 'k', '1'], ['delete', 'k'], ['flush', '--yes'], ['scan'], ['create-table']])('%s against an endpoint that never answers ends with one line, exit 1', async (...args) => {
      const silent = await silentServer();
      try {
        const result = await run(['--endpoint', silent.endpoint, '--table', 'app-cache', '--timeout', '0.5', ...args]);
        expect(result).toMatchObject({ code: 1, stderr: `dynamo-cache: DynamoDB at ${silent.endpoint} did not answer within 0.5 s (--timeout)\n` });
      } finally {
        silent.close();
      }
    });
  });

  describe('errors: a message that says what is wrong, an exit code, no stack trace', () => {
    const noStack = (result: Result) => expect(result.stderr).not.toMatch(/^\s+at /m);
    const oneLine = (result: Result) => expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    beforeAll(async () => {
      expect(await run(['--endpoint', db.endpoint, '--table', 't-t-t', 'create-table'])).toMatchObject({ code: 0 });
    });

    it.each<[string, string[], Record<string, string>, number, RegExp]>([
      ['no table', ['get', 'k'], {}, 2, /no table: pass --table or set DYNAMO_CACHE_TABLE/],
      ['a missing table', ['--table', 'no-such-table', 'get', 'k'], {}, 1, /table "no-such-table" does not exist .* dynamo-cache create-table --table no-such-table/],
      ['bad JSON', ['--table', 't-t-t', 'set', 'k', '{oops'], {}, 2, /the value is not valid JSON .*use --raw/],
      ['a --ttl that is not a number', ['--table', 't-t-t', 'set', 'k', '1', '--ttl', 'soon'], {}, 2, /option '--ttl <seconds>' argument 'soon' is invalid. It must be a positive number of seconds/],
      ['a negative --ttl', ['--table', 't-t-t', 'set', 'k', '1', '--ttl', '-5'], {}, 2, /option '--ttl <seconds>' argument '-5' is invalid/],
      ['a zero --ttl', ['--table', 't-t-t', 'set', 'k', '1', '--ttl', '0'], {}, 2, /argument '0' is invalid/],
      ['a bad --key', ['--table', 't-t-t', '--key', 'nokey', 'get', 'k'], {}, 2, /--key must be <id>=<base64 key>, the id 1-64 of A-Z a-z 0-9 _ - \(the value given is not shown\)/],
      ['an unknown command', ['frobnicate'], {}, 2, /^dynamo-cache: unknown command 'frobnicate' \(see dynamo-cache --help\)$/m],
      ['an unknown option', ['--table', 't-t-t', 'get', 'k', '--frob'], {}, 2, /unknown option '--frob'/],
      ['a missing argument', ['--table', 't-t-t', 'get'], {}, 2, /missing required argument 'key'/],
      ['set without a value', ['--table', 't-t-t', 'set', 'k'], {}, 2, /no value: give it as an argument, with --file <path>, or - to read standard input/],
      ['set with a value and --file', ['--table', 't-t-t', 'set', 'k', '1', '--file', 'v.json'], {}, 2, /give the value as an argument or with --file, not both/],
      ['set --file of a missing file', ['--table', 't-t-t', 'set', 'k', '--file', '/no/such/file.json'], {}, 2, /cannot read --file \/no\/such\/file.json: ENOENT/],
      ['local --port that is not a port', ['local', '--port', 'abc'], {}, 2, /option '--port <port>' argument 'abc' is invalid. It must be a port number from 0 to 65535/],
      ['scan --page-size 0', ['--table', 't-t-t', 'scan', '--page-size', '0'], {}, 2, /argument '0' is invalid. It must be a positive integer/],
      ['scan --rate -1', ['--table', 't-t-t', 'scan', '--rate', '-1'], {}, 2, /It must be a positive number of read units per second/],
    ])('%s', async (_name, args, env, code, message) => {
      const result = await run(['--endpoint', db.endpoint, ...args], env);
      expect(result.code).toBe(code);
      expect(result.stderr).toMatch(message);
      noStack(result);
      oneLine(result);
    });

    it('an endpoint nobody listens on', async () => {
      const result = await run(['--endpoint', 'http://127.0.0.1:9', '--table', 'x', 'get', 'k']);
      expect(result).toMatchObject({ code: 1, stderr: 'dynamo-cache: cannot reach DynamoDB at http://127.0.0.1:9: ECONNREFUSED\n' });
    });

    it('no AWS credentials (real AWS, nothing configured)', async () => {
      const result = await run(['--table', 'x', '--region', 'eu-west-1', 'get', 'k']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/no AWS credentials found/);
      noStack(result);
    });

    it.each([
      ['--profile', ['--profile', 'nosuch'], {}],
      ['AWS_PROFILE', [], { AWS_PROFILE: 'nosuch' }],
    ])('a profile that gives no credentials (%s) is named in the message', async (_name, args, env) => {
      const result = await run(['--table', 'x', '--region', 'eu-west-1', ...args, 'get', 'k'], env);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe('dynamo-cache: no AWS credentials for profile "nosuch" (from --profile or AWS_PROFILE): check that ~/.aws/config or ~/.aws/credentials defines it, or name another\n');
    });

    it('no region (real AWS, nothing configured)', async () => {
      const result = await run(['--table', 'x', 'get', 'k'], { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/no AWS region: pass --region or set AWS_REGION/);
    });

    it('--help exits 0', async () => {
      const result = await run(['--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: dynamo-cache/);
    });
  });
});

/**
 * CLI output samples in the docs are produced by the CLI. A ```console block right after a
 * `<!-- cli-output ... -->` comment, in README.md or any docs/*.md page, is a session: each `$ dynamo-cache ...`
 * line runs (in order, against this file's dynalite through AWS_ENDPOINT_URL_DYNAMODB) and must print the
 * lines that follow it, up to the next `$` line. Times are compared as placeholders. To rewrite the samples
 * after a deliberate change of the output: UPDATE_CLI_SAMPLES=1 npx vitest run test/cli.test.ts
 */
describe('CLI output samples in the docs', () => {
  const root = join(import.meta.dirname, '..');
  const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
  const marked = /<!-- cli-output\b[^>]*-->\n```console\n([\s\S]*?)```/g;
  /** Dates, epoch numbers and durations: what legitimately differs from one run to the next. */
  const normalize = (text: string) =>
    text
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<date>')
      .replace(/\b\d{10,13}\b/g, '<epoch>')
      .replace(/scanned in \d+\.\d s/g, 'scanned in <seconds> s')
      .trimEnd();

  it('README.md and docs/*.md have samples, and every one is what the CLI prints', async () => {
    let samples = 0;
    for (const page of pages) {
      const text = readFileSync(join(root, page), 'utf8');
      let rewritten = text;
      for (const [block, session] of text.matchAll(marked)) {
        const steps = session!.split(/^(?=\$ )/m).map((step) => {
          const [command, ...output] = step.trimEnd().split('\n');
          return { command: command!.slice(2), expected: output.join('\n') };
        });
        const actual: string[] = [];
        for (const { command, expected } of steps) {
          const [program, ...args] = shellWords(command);
          expect(program, `${page}: ${command}`).toBe('dynamo-cache');
          const result = await run(args, { AWS_ENDPOINT_URL_DYNAMODB: db.endpoint });
          const printed = `${result.stdout}${result.stderr}`.trimEnd();
          actual.push(`$ ${command}${printed === '' ? '' : `\n${printed}`}`);
          if (process.env.UPDATE_CLI_SAMPLES !== '1') expect(normalize(printed), `${page}: output of "${command}" (UPDATE_CLI_SAMPLES=1 rewrites the samples)`).toBe(normalize(expected));
          samples += 1;
        }
        rewritten = rewritten.replace(block, block.replace(session!, `${actual.join('\n')}\n`));
      }
      if (process.env.UPDATE_CLI_SAMPLES === '1' && rewritten !== text) writeFileSync(join(root, page), rewritten);
    }
    expect(samples).toBeGreaterThanOrEqual(10);
  });
});

/** Splits a command line as a POSIX shell would for the samples: words, with '...' and "..." quoting. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const [, single, double, bare] of line.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    words.push(single ?? double?.replace(/\\(.)/g, '$1') ?? bare!);
  }
  return words;
}

/** A TCP server that accepts connections and never answers: a DynamoDB endpoint that hangs. */
async function silentServer(): Promise<{ endpoint: string; close: () => void }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/** Streams for running the program in-process, as on a terminal (`isTTY`) or not, with `input` typed on standard input. */
function inProcessIo(input: string, terminal: boolean): { io: CliIo; stdout: () => string; stderr: () => string } {
  const collect = () => {
    const stream = Object.assign(new PassThrough(), { isTTY: terminal });
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { stream, text: () => text };
  };
  const out = collect();
  const err = collect();
  const stdin = Object.assign(new PassThrough(), { isTTY: terminal });
  stdin.end(input);
  return { io: { stdout: out.stream, stderr: err.stream, stdin, env: { ...cleanEnv } }, stdout: out.text, stderr: err.text };
}
