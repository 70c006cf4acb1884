import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { localClientConfig } from './support/dynalite.ts';
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

/** Runs the built `dynamo-cache` executable in a child process. */
function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...cleanEnv, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Runs against the test's dynalite with a fresh table (created by the CLI itself). */
async function withTable(): Promise<{ table: string; cmd: (...args: string[]) => Promise<Result> }> {
  const table = `cli-${randomBytes(4).toString('hex')}`;
  const cmd = (...args: string[]) => run(['--endpoint', db.endpoint, '--table', table, ...args]);
  const created = await cmd('create-table');
  expect(created).toMatchObject({ code: 0 });
  return { table, cmd };
}

describe('dynamo-cache CLI', () => {
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
    const cache = new DynamoCache({ tableName: table, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger() });
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
    const cache = new DynamoCache({ tableName: table, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger(), encryption: { keys: { k1: key }, writeKeyId: 'k1' } });
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
    const flushed = await cmd('--namespace', 'svc', 'flush');
    expect(flushed).toMatchObject({ code: 0 });
    expect(flushed.stdout).toContain('flushed namespace svc');
    expect((await cmd('--namespace', 'svc', 'get', 'a')).code).toBe(3);
    const fresh = new DynamoCache({ tableName: table, namespace: 'svc', clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger() });
    expect(await fresh.get('a')).toBeUndefined();
    expect(JSON.parse((await cmd('--json', '--namespace', 'other', 'get', 'a')).stdout).value).toBe(2);
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

  describe('errors: a message that says what is wrong, an exit code, no stack trace', () => {
    const noStack = (result: Result) => expect(result.stderr).not.toMatch(/^\s+at /m);

    it.each<[string, string[], Record<string, string>, number, RegExp]>([
      ['no table', ['get', 'k'], {}, 2, /no table: pass --table or set DYNAMO_CACHE_TABLE/],
      ['a missing table', ['--table', 'no-such-table', 'get', 'k'], {}, 1, /table "no-such-table" does not exist .* dynamo-cache create-table --table no-such-table/],
      ['bad JSON', ['--table', 't-t-t', 'set', 'k', '{oops'], {}, 2, /the value is not valid JSON .*use --raw/],
      ['a bad --ttl', ['--table', 't-t-t', 'set', 'k', '1', '--ttl', 'soon'], {}, 2, /--ttl must be a number of seconds/],
      ['a bad --key', ['--table', 't-t-t', '--key', 'nokey', 'get', 'k'], {}, 2, /--key must be <id>=<base64 key>/],
      ['an unknown command', ['frobnicate'], {}, 2, /unknown command 'frobnicate'/],
      ['a missing argument', ['--table', 't-t-t', 'get'], {}, 2, /missing required argument 'key'/],
    ])('%s', async (_name, args, env, code, message) => {
      if (args.includes('t-t-t')) await run(['--endpoint', db.endpoint, '--table', 't-t-t', 'create-table']);
      const result = await run(['--endpoint', db.endpoint, ...args], env);
      expect(result.code).toBe(code);
      expect(result.stderr).toMatch(message);
      noStack(result);
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
