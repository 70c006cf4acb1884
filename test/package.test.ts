/**
 * The package as a consumer gets it: `npm pack` of the built package, installed from the tarball into fresh
 * projects, one with the lowest supported versions of the peer dependencies and one with the newest (the
 * versions this repository develops against). Each project checks ES module import and CommonJS require at
 * run time (against dynalite, the middleware and the dynamo-cache/keyv store included), `tsc` in strict mode with
 * exactOptionalPropertyTypes and skipLibCheck off for module node16 (an ES module file and a .cts file),
 * nodenext and bundler resolution, the `dynamo-cache` bin, and that only one copy of the SDK client is
 * installed. publint --strict and attw check the tarball itself.
 *
 * The installs use the shared npm cache with --prefer-offline: after the first run they need no network.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import manifest from '../package.json' with { type: 'json' };
import { FaultProxy } from './support/fault-proxy.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();
const root = join(import.meta.dirname, '..');
const exec = promisify(execFile);
const tsc = join(root, 'node_modules/typescript/bin/tsc');

/**
 * The lowest supported versions: the peer ranges' lower bounds. 3.632.0 is the SDK of the Lambda nodejs22.x
 * era (AWS no longer publishes a per-runtime table; docs/layer-and-template.md says how to check a region).
 */
const lowest = { '@aws-sdk/client-dynamodb': '3.632.0', '@middy/core': '5.0.2', keyv: '5.3.0' };

async function installedVersion(name: string): Promise<string> {
  return JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/** npm for a child project: without the npm_* variables of the `npm test` running us, which would leak into it. */
function npm(args: string[], cwd: string): Promise<{ stdout: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
  return exec('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=error'], { cwd, env, maxBuffer: 16 * 1024 * 1024 });
}

/** Consumer scripts run against dynalite, with a time budget generous enough for a loaded machine (the default is 300 ms). */
const ESM_RUN = `
import middy from '@middy/core';
import { DynamoCache, dynamoCache } from 'dynamo-cache';
const [endpoint, tableName] = process.argv.slice(2);
const clientConfig = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
const options = { tableName, clientConfig, memory: false, namespace: 'esm', timeoutMs: 5000 };
const cache = new DynamoCache(options);
const stored = await cache.set('k', { from: 'esm' });
let calls = 0;
const handler = middy(async (event) => ({ id: event.id, calls: ++calls }))
  .use(dynamoCache({ ...options, response: { key: 'id' } }));
const context = { functionName: 'consumer', getRemainingTimeInMillis: () => 5000 };
const first = await handler({ id: 'a' }, context);
const second = await handler({ id: 'a' }, context);
// The Keyv store of the dynamo-cache/keyv subpath, over this package's own DynamoCache.
const { KeyvDynamoCache } = await import('dynamo-cache/keyv');
const keyv = new (await import('keyv')).Keyv({ store: new KeyvDynamoCache({ cache }) });
await keyv.set('session', { user: 'ada' }, 60000);
const viaKeyv = await new (await import('keyv')).Keyv({ store: new KeyvDynamoCache({ cache: new DynamoCache(options) }) }).get('session');
console.log(JSON.stringify({ stored, read: await new DynamoCache(options).get('k'), first, second, viaKeyv }));
`;

const CJS_RUN = `
const { DynamoCache, InvalidKeyError } = require('dynamo-cache');
const [endpoint, tableName] = process.argv.slice(2);
const clientConfig = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
(async () => {
  const cache = new DynamoCache({ tableName, clientConfig, memory: false, namespace: 'esm', timeoutMs: 5000 });
  const { KeyvDynamoCache } = require('dynamo-cache/keyv');
  const viaKeyv = await new KeyvDynamoCache({ cache }).get('keyv:session');
  console.log(JSON.stringify({ read: await cache.get('k'), typedError: typeof InvalidKeyError, sdk: require('@aws-sdk/client-dynamodb/package.json').version, viaKeyv }));
})();
`;

/**
 * A large value's writes get a longer budget (`largeValueTimeoutMs`, 3 s) than the cache's `timeoutMs`
 * (300 ms, the default here): run against a fault proxy that answers BatchWriteItem 800 ms late, its write
 * must not be cut at 300 ms, whatever the SDK's request handler does with a request's own timeout.
 */
const SLOW_RUN = `
import { randomBytes } from 'node:crypto';
import { DynamoCache } from 'dynamo-cache';
const [slowEndpoint, endpoint, tableName] = process.argv.slice(2);
const clientConfig = (at) => ({ endpoint: at, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
const value = randomBytes(450_000).toString('base64');
const stored = await new DynamoCache({ tableName, memory: false, namespace: 'slow', clientConfig: clientConfig(slowEndpoint) }).set('big', value);
const direct = new DynamoCache({ tableName, memory: false, namespace: 'slow', timeoutMs: 5000, clientConfig: clientConfig(endpoint) });
console.log(JSON.stringify({ stored, readBack: (await direct.get('big')) === value }));
`;

/** Strict consumer code: env values (string | undefined) passed to options, as in the README. */
const ESM_TS = `
import middy from '@middy/core';
import { Keyv } from 'keyv';
import { DynamoCache, dynamoCache, type DynamoCacheContext } from 'dynamo-cache';
import { KeyvDynamoCache } from 'dynamo-cache/keyv';

const cache = new DynamoCache({ tableName: process.env.DYNAMO_CACHE_TABLE, namespace: process.env.NAMESPACE });
export const token: string | undefined = await cache.get<string>('access_token');
export const user = await cache.getOrSet('user:1', async () => ({ id: '1' }), { ttlSeconds: 60, staleIfErrorSeconds: undefined });
export const handler = middy(async (_event: unknown, context: DynamoCacheContext) => ({ statusCode: 200, body: String(await context.cache.get('k')) }))
  .use(dynamoCache({ tableName: process.env.DYNAMO_CACHE_TABLE, response: { ttlSeconds: 60, keyPrefix: process.env.PREFIX } }));
export const sessions = new Keyv<{ user: string }>({ store: new KeyvDynamoCache({ cache: (namespace) => new DynamoCache({ namespace: namespace ?? 'sessions' }) }), namespace: 'sessions' });
`;

const CJS_TS = `
import { DynamoCache, InvalidKeyError, type DynamoCacheOptions } from 'dynamo-cache';
import { KeyvDynamoCache } from 'dynamo-cache/keyv';
export const store = new KeyvDynamoCache({ cache: new DynamoCache({ tableName: 'sessions' }) });
const options: DynamoCacheOptions = { tableName: process.env.DYNAMO_CACHE_TABLE, memory: { ttlSeconds: 30 } };
const cache = new DynamoCache(options);
export async function read(): Promise<number | undefined> {
  try {
    return await cache.get<number>('k');
  } catch (error) {
    if (error instanceof InvalidKeyError) return undefined;
    throw error;
  }
}
`;

/** tsconfig files of the consumer: the resolution modes a TypeScript project uses. */
const TSCONFIGS: Record<string, { module: string; moduleResolution: string; files: string[] }> = {
  node16: { module: 'node16', moduleResolution: 'node16', files: ['esm.ts', 'cjs.cts'] },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', files: ['esm.ts', 'cjs.cts'] },
  bundler: { module: 'esnext', moduleResolution: 'bundler', files: ['esm.ts'] },
};

/**
 * tsc's errors in the consumer's files and in dynamo-cache's declarations. Errors inside other packages' own
 * declarations are theirs (@middy/core 7.9's index.d.ts imports its optional peer @aws/durable-execution-sdk-js,
 * so any project with skipLibCheck off and without that package gets one).
 */
async function typeErrors(dir: string, config: string): Promise<string[]> {
  const { stdout } = await exec(process.execPath, [tsc, '-p', config], { cwd: dir }).catch((error: { stdout: string }) => error);
  return stdout
    .split('\n')
    .filter((line) => /error TS\d+/.test(line))
    .filter((line) => !line.startsWith('node_modules/') || line.startsWith('node_modules/dynamo-cache/'));
}

interface Consumer {
  readonly dir: string;
  readonly versions: Record<string, string>;
}

let work: string;
let tarball: string;
const consumers: Record<'lowest' | 'newest', Consumer> = {} as Record<'lowest' | 'newest', Consumer>;

/** A fresh project that depends on the tarball and on `versions` of the peers, with the consumer files written. */
async function consumer(name: string, versions: Record<string, string>): Promise<Consumer> {
  const dir = join(work, name);
  await mkdir(dir);
  const dependencies = { 'dynamo-cache': `file:${tarball}`, ...versions, '@types/node': await installedVersion('@types/node') };
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, type: 'module', dependencies }, null, 2));
  await writeFile(join(dir, 'run.mjs'), ESM_RUN);
  await writeFile(join(dir, 'run.cjs'), CJS_RUN);
  await writeFile(join(dir, 'slow.mjs'), SLOW_RUN);
  await writeFile(join(dir, 'esm.ts'), ESM_TS);
  await writeFile(join(dir, 'cjs.cts'), CJS_TS);
  for (const [mode, { files, ...resolution }] of Object.entries(TSCONFIGS)) {
    const compilerOptions = { ...resolution, target: 'es2022', strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, noEmit: true, types: ['node'] };
    await writeFile(join(dir, `tsconfig.${mode}.json`), JSON.stringify({ compilerOptions, files }, null, 2));
  }
  await npm(['install', '--prefer-offline', '--ignore-scripts'], dir);
  return { dir, versions };
}

/** Every installed copy of a package in a project's node_modules, nested ones included. */
async function copiesOf(dir: string, name: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'node_modules'), { recursive: true });
  return entries.filter((entry) => entry === name || entry.endsWith(`/node_modules/${name}`));
}

beforeAll(async () => {
  // dist/ was built by test/global-setup.ts; --ignore-scripts keeps prepack from rebuilding it under other tests.
  work = await mkdtemp(join(tmpdir(), 'dynamo-cache-package-'));
  const { stdout } = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
  tarball = join(work, JSON.parse(stdout)[0].filename);
  const newest = { '@aws-sdk/client-dynamodb': await installedVersion('@aws-sdk/client-dynamodb'), '@middy/core': await installedVersion('@middy/core'), keyv: await installedVersion('keyv') };
  [consumers.lowest, consumers.newest] = await Promise.all([consumer('lowest', lowest), consumer('newest', newest)]);
}, 240_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

// Each check is a child process (tsc, node, publint, attw) on its own files: run them concurrently.
describe.concurrent('the packed package', () => {
  it('contains the bundles, both kinds of declarations, the CLI, README and LICENSE, and no source maps', async () => {
    const { stdout } = await exec('tar', ['-tzf', tarball]);
    const files = stdout.trim().split('\n').map((file) => file.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.cjs', 'dist/cli.js', 'dist/types/index.d.ts', 'dist/types/index.d.cts']));
    expect(files.filter((file) => file.endsWith('.map'))).toEqual([]);
    expect(files.filter((file) => !file.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(file))).toEqual([]);
  });

  it('publint --strict finds nothing', async () => {
    const { stdout } = await exec(join(root, 'node_modules/.bin/publint'), ['--strict', tarball]);
    expect(stdout).toContain('All good!');
  });

  it('attw (are the types wrong) finds no problem for node10, node16 (CJS and ESM) and bundler resolution', async () => {
    const { stdout } = await exec(join(root, 'node_modules/.bin/attw'), [tarball, '--format', 'json']);
    const report = JSON.parse(stdout);
    expect(report.analysis.problems).toEqual([]);
    const resolutions = Object.keys(report.analysis.entrypoints['.'].resolutions);
    expect(resolutions).toEqual(expect.arrayContaining(['node10', 'node16-cjs', 'node16-esm', 'bundler']));
  });

  describe.each(['lowest', 'newest'] as const)('installed with the %s supported peers', (which) => {
    const project = () => consumers[which];

    it('installs exactly one @aws-sdk/client-dynamodb, the application’s', async () => {
      const copies = await copiesOf(project().dir, '@aws-sdk/client-dynamodb');
      expect(copies).toEqual(['@aws-sdk/client-dynamodb']);
      const installed = JSON.parse(await readFile(join(project().dir, 'node_modules/@aws-sdk/client-dynamodb/package.json'), 'utf8'));
      expect(installed.version).toBe(project().versions['@aws-sdk/client-dynamodb']);
    });

    it('ES module import works at run time: set, get, and the middleware with this @middy/core (second call a hit)', async () => {
      const tableName = await db.newTable();
      const { stdout } = await exec(process.execPath, ['run.mjs', db.endpoint, tableName], { cwd: project().dir });
      const result = JSON.parse(stdout);
      expect(result).toEqual({ stored: true, read: { from: 'esm' }, first: { id: 'a', calls: 1 }, second: { id: 'a', calls: 1 }, viaKeyv: { user: 'ada' } });
      // CommonJS require() of the same package, with the same SDK copy, reads what the ES module wrote.
      const cjs = JSON.parse((await exec(process.execPath, ['run.cjs', db.endpoint, tableName], { cwd: project().dir })).stdout);
      // Keyv stores its own serialized form: the CommonJS store reads the raw entry the ES module Keyv wrote.
      expect(cjs).toEqual({ read: { from: 'esm' }, typedError: 'function', sdk: project().versions['@aws-sdk/client-dynamodb'], viaKeyv: expect.stringContaining('"user":"ada"') });
    });

    it.each(Object.keys(TSCONFIGS))('tsc (strict, exactOptionalPropertyTypes, skipLibCheck off) compiles the consumer with %s resolution', async (mode) => {
      expect(await typeErrors(project().dir, `tsconfig.${mode}.json`)).toEqual([]);
    });

    it("a large value's write keeps its longer budget: a BatchWriteItem answered 800 ms late (timeoutMs 300) is waited for, and the value stored", async () => {
      const tableName = await db.newTable();
      // A proxy of this test's own: the tests of this file run concurrently.
      const proxy = await FaultProxy.start(db.endpoint);
      try {
        proxy.setFaults({ latencyMs: 800, operations: ['BatchWriteItem'] });
        const { stdout } = await exec(process.execPath, ['slow.mjs', proxy.endpoint, db.endpoint, tableName], { cwd: project().dir });
        expect(JSON.parse(stdout)).toEqual({ stored: true, readBack: true });
        expect(proxy.count('BatchWriteItem')).toBeGreaterThan(0);
        expect(proxy.injected.get('abandoned')).toBeUndefined();
      } finally {
        await proxy.close();
      }
    });

    it('the bin runs: dynamo-cache --version', async () => {
      const { stdout } = await exec(join(project().dir, 'node_modules/.bin/dynamo-cache'), ['--version'], { cwd: project().dir });
      expect(stdout).toBe(`${manifest.version}\n`);
    });
  });

  it('the type check is not vacuous: a type error in the consumer fails tsc, and a .cts file resolves the .d.cts declarations', async () => {
    const dir = consumers.newest.dir;
    const { stdout } = await exec(process.execPath, [tsc, '-p', 'tsconfig.node16.json', '--listFiles'], { cwd: dir }).catch((error: { stdout: string }) => error);
    expect(stdout).toMatch(/dynamo-cache\/dist\/types\/index\.d\.cts$/m);
    expect(stdout).toMatch(/dynamo-cache\/dist\/types\/index\.d\.ts$/m);
    const config = JSON.parse(await readFile(join(dir, 'tsconfig.node16.json'), 'utf8'));
    await writeFile(join(dir, 'tsconfig.broken.json'), JSON.stringify({ ...config, files: ['broken.cts'] }));
    await writeFile(join(dir, 'broken.cts'), `import { DynamoCache } from 'dynamo-cache';\nexport const n: number = new DynamoCache({ tableName: 't' }).namespace;\n`);
    expect(await typeErrors(dir, 'tsconfig.broken.json')).toEqual([expect.stringMatching(/^broken\.cts\(2,14\): error TS2322/)]);
  });
});
