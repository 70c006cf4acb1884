import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Library from '../src/index.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';
import { httpApiEvent } from './support/http-events.ts';

const db = useDynalite();
const root = join(import.meta.dirname, '..');
const run = promisify(execFile);

/**
 * A Lambda-like file system in a temporary folder: the layer under opt/, the AWS SDK (and only the SDK and
 * its dependencies) under var/runtime/node_modules standing in for the runtime's, the function under
 * var/task. NODE_PATH is the one Lambda sets.
 */
let sandbox: string;
let nodePath: string;
let tableName: string;

/** The packages the runtime provides: the SDK clients this library imports, and everything they depend on. */
async function runtimeClosure(names: string[]): Promise<Set<string>> {
  const closure = new Set<string>();
  const queue = [...names];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (closure.has(name)) continue;
    closure.add(name);
    const manifest = JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8'));
    queue.push(...Object.keys(manifest.dependencies ?? {}));
  }
  return closure;
}

beforeAll(async () => {
  // The layer was built by test/global-setup.ts.
  sandbox = await mkdtemp(join(tmpdir(), 'dynamo-cache-lambda-'));
  await cp(join(root, 'layer', 'nodejs'), join(sandbox, 'opt', 'nodejs'), { recursive: true });
  for (const name of await runtimeClosure(['@aws-sdk/client-dynamodb'])) {
    await mkdir(join(sandbox, 'var', 'runtime', 'node_modules', name, '..'), { recursive: true });
    await symlink(join(root, 'node_modules', name), join(sandbox, 'var', 'runtime', 'node_modules', name), 'dir');
  }
  nodePath = ['opt/nodejs/node22/node_modules', 'opt/nodejs/node_modules', 'var/runtime/node_modules', 'var/runtime', 'var/task']
    .map((folder) => join(sandbox, folder))
    .join(delimiter);
  tableName = await db.newTable();
  buildInfo = JSON.parse(await readFile(join(root, 'layer/build-info.json'), 'utf8'));
});

/** layer/build-info.json, written by build.mjs: what went into each file of the layer. */
interface BuildInfo {
  bundledPackages: string[];
  deferred: Record<string, string>;
  outputs: Record<string, { bytes: number; imports: string[]; inputs: string[] }>;
}
let buildInfo: BuildInfo;

/** The text of every file of the layer's own code (the entry, the deferred parts and their chunks). */
async function libraryText(): Promise<string> {
  const folder = join(root, 'layer/nodejs/node_modules/dynamo-cache');
  const files = Object.keys(buildInfo.outputs);
  expect(files.length).toBeGreaterThan(4);
  return (await Promise.all(files.map((file) => readFile(join(folder, file), 'utf8')))).join('\n');
}

afterAll(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

/** What module-log.mjs recorded: how each SDK package and each file of the layer's dynamo-cache was reached. */
type ModuleLog = Array<{ specifier: string; by: 'import' | 'require'; url: string }>;

/**
 * Deploys `files` as the function code in its own task folder and invokes it with `events` in a fresh Node 22
 * process; `modules` receives how the SDK and the layer's files were loaded.
 */
async function invoke(task: string, handlerFile: string, events: unknown[], options: { hook?: boolean; modules?: ModuleLog } = {}): Promise<any[]> {
  const taskDir = join(sandbox, 'var', task);
  const { stdout, stderr } = await run(
    process.execPath,
    [
      ...(options.hook === false ? [] : ['--import', join(root, 'test/support/lambda-runtime/esm-node-path.mjs')]),
      ...(options.modules === undefined ? [] : ['--import', join(root, 'test/support/lambda-runtime/module-log.mjs')]),
      join(root, 'test/support/lambda-runtime/bootstrap.mjs'),
      join(taskDir, handlerFile),
      JSON.stringify(events),
    ],
    {
      cwd: taskDir,
      env: {
        PATH: process.env.PATH,
        NODE_PATH: nodePath.replace(join(sandbox, 'var/task'), taskDir),
        LAMBDA_TASK_ROOT: taskDir,
        AWS_LAMBDA_FUNCTION_NAME: 'layer-test',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
        DYNAMO_CACHE_TABLE: tableName,
        DYNAMO_CACHE_NAMESPACE: task,
        POWERTOOLS_LOG_LEVEL: 'ERROR',
      },
    },
  );
  const logged = stderr.split('\n').find((line) => line.startsWith('module-log '));
  if (options.modules !== undefined && logged !== undefined) options.modules.push(...JSON.parse(logged.slice('module-log '.length)));
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** The layer's dynamo-cache files a process loaded, by name, in order. */
const layerFiles = (modules: ModuleLog) => modules.filter((m) => m.url.includes('/opt/nodejs/node_modules/dynamo-cache/')).map((m) => m.url.split('/').pop()!);

async function deploy(task: string, source: string, file: string): Promise<void> {
  await mkdir(join(sandbox, 'var', task), { recursive: true });
  await writeFile(join(sandbox, 'var', task, file), await readFile(join(root, source)));
}

describe('the built layer, loaded the way Lambda loads it', () => {
  it('a CommonJS handler require()s dynamo-cache from the layer and gets a hit on the second call; the SDK is reached with require, no ES module facade of it', async () => {
    await deploy('cjs-task', 'test/fixtures/cjs-function/index.js', 'index.js');
    const modules: ModuleLog = [];
    const [first, second] = await invoke('cjs-task', 'index.js', [{ name: 'ada' }, { name: 'ada' }], { modules });
    expect(first).toMatchObject({ value: { greeting: 'hello ada' }, upstreamCalls: 1, hits: 0, errors: 0 });
    expect(second).toMatchObject({ value: { greeting: 'hello ada' }, upstreamCalls: 1, hits: 1, memoryHits: 1, errors: 0 });
    // The runtime's SDK (var/runtime through NODE_PATH; its symlinks resolved), required: an import of it
    // would build the ES module facade that cost CommonJS functions 24-44 ms of cold start.
    const sdk = modules.filter((m) => m.specifier === '@aws-sdk/client-dynamodb');
    expect(sdk).toEqual([{ specifier: '@aws-sdk/client-dynamodb', by: 'require', url: expect.stringContaining('/@aws-sdk/client-dynamodb/dist-cjs/') }]);
    expect(layerFiles(modules)).toEqual(expect.arrayContaining(['index.cjs', 'index.mjs', 'cache.mjs']));
    expect(layerFiles(modules)).not.toContain('middleware.mjs'); // a function that only caches values never loads the middleware
    // A new execution environment (a fresh process) finds the value in DynamoDB.
    const [cold] = await invoke('cjs-task', 'index.js', [{ name: 'ada' }]);
    expect(cold).toMatchObject({ upstreamCalls: 0, dynamoHits: 1 });
  });

  it('the example ES module function (template.yaml) imports dynamo-cache and @middy/core from the layer; the second GET is a hit; the SDK is reached with require', async () => {
    await deploy('esm-task', 'examples/layer-function/index.mjs', 'index.mjs');
    const event = httpApiEvent({ path: '/users/42', route: '/users/{id}' });
    const modules: ModuleLog = [];
    const [first, second] = await invoke('esm-task', 'index.mjs', [event, event], { modules });
    expect(first.statusCode).toBe(200);
    expect(JSON.parse(first.body)).toMatchObject({ id: '42', name: 'User 42' });
    expect(first.headers['X-Cache']).toBe('Miss');
    expect(second.headers['X-Cache']).toBe('Hit');
    expect(second.body).toBe(first.body);
    // Resolved as the runtime resolves an ES module's bare import: through the NODE_PATH folders.
    expect(modules.find((m) => m.specifier === 'dynamo-cache')).toEqual({ specifier: 'dynamo-cache', by: 'import', url: expect.stringContaining('/opt/nodejs/node_modules/dynamo-cache/index.mjs') });
    expect(modules.filter((m) => m.specifier === '@aws-sdk/client-dynamodb').map((m) => m.by)).toEqual(['require']);
    expect(layerFiles(modules)).toEqual(expect.arrayContaining(['index.mjs', 'middleware.mjs']));
    const [health] = await invoke('esm-task', 'index.mjs', [httpApiEvent({ path: '/health', route: '/health' })]);
    expect(health).toMatchObject({ statusCode: 200, body: 'ok' });
    expect(health.headers?.['X-Cache']).toBeUndefined();
  });

  it('the dependencies loaded on first use (the JMESPath engine, the default Powertools logger) load from the layer', async () => {
    await deploy('on-demand', 'test/fixtures/on-demand-function/index.mjs', 'index.mjs');
    const event = { body: JSON.stringify({ orderId: 'o-1' }) }; // not an HTTP event: keyed by the JMESPath expression
    const [first, second] = await invoke('on-demand', 'index.mjs', [event, event]);
    expect(JSON.parse(first.body)).toEqual({ runs: 1 });
    expect(JSON.parse(second.body)).toEqual({ runs: 1 }); // the second is the stored result, returned early
    const taskDir = join(sandbox, 'var', 'on-demand');
    const { stdout, stderr } = await run(process.execPath, ['--import', join(root, 'test/support/lambda-runtime/esm-node-path.mjs'), '--input-type=module', '-e', "const m = await import('./index.mjs'); console.log(JSON.stringify(await m.logs()));"], {
      cwd: taskDir,
      env: { PATH: process.env.PATH, NODE_PATH: nodePath.replace(join(sandbox, 'var/task'), taskDir), AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_ENDPOINT_URL_DYNAMODB: db.endpoint, DYNAMO_CACHE_TABLE: tableName },
    });
    // Powertools writes warnings to stderr.
    const warning = `${stdout}\n${stderr}`.split('\n').map((line) => (line.startsWith('{') ? JSON.parse(line) : undefined)).find((entry) => entry?.level === 'WARN');
    expect(warning).toMatchObject({ service: 'dynamo-cache', failure: 'client' });
  });

  it('without the NODE_PATH resolution of ES modules the import fails: the hook is what finds the layer', async () => {
    await deploy('esm-nohook', 'examples/layer-function/index.mjs', 'index.mjs');
    await expect(invoke('esm-nohook', 'index.mjs', [{}], { hook: false })).rejects.toThrow(/ERR_MODULE_NOT_FOUND|Cannot find package/);
  });

  it('contains no @aws-sdk or @smithy code: the runtime provides the SDK, reached with require', async () => {
    const files = await readdir(join(root, 'layer', 'nodejs'), { recursive: true });
    expect(files.filter((file) => /@aws-sdk|@smithy/.test(file))).toEqual([]);
    // The build lists the packages it bundled (minified code names none); the SDK is not among them.
    const bundled: string[] = buildInfo.bundledPackages;
    expect(bundled).toEqual(expect.arrayContaining(['lru-cache', 'cockatiel', '(dynamo-cache)']));
    expect(bundled.filter((name) => /^@aws-sdk|^@smithy/.test(name))).toEqual([]);
    const text = await libraryText();
    expect(text).not.toMatch(/class DynamoDBClient\b/);
    // No import of the SDK at all; only the client package is left to the runtime, and required.
    expect(text).not.toMatch(/(?:from ?|import ?\(?)["']@(?:aws-sdk|smithy)\//);
    const required = new Set([...text.matchAll(/createRequire\(import\.meta\.url\)\(["'](@(?:aws-sdk|smithy)\/[^"']+)["']\)/g)].map((m) => m[1]));
    expect([...required]).toEqual(['@aws-sdk/client-dynamodb']);
  });

  it("reaches Node's built-in modules with process.getBuiltinModule, not import (no ES module facade to build at a cold start)", async () => {
    const text = await libraryText();
    expect([...text.matchAll(/(?:from ?|import ?\(?)["'](node:[^"']+)["']/g)].map((m) => m[1])).toEqual([]);
    const reached = new Set([...text.matchAll(/getBuiltinModule\(["'](node:[^"']+)["']\)/g)].map((m) => m[1]));
    expect([...reached]).toEqual(expect.arrayContaining(['node:crypto', 'node:timers/promises', 'node:stream', 'node:diagnostics_channel', 'node:module']));
  });

  it('the entry loads none of the implementation: it imports nothing, and holds only the error classes and the pure refresh helpers', () => {
    const entry = buildInfo.outputs['index.mjs']!;
    expect(entry.imports).toEqual([]);
    expect(entry.inputs.filter((input) => !input.startsWith('virtual:')).sort()).toEqual(['src/errors.ts', 'src/oauth/errors.ts', 'src/refresh/expiry.ts', 'src/refresh/freshness.ts']);
    expect(entry.bytes).toBeLessThan(4096);
    // Each deferred part is its own file; the parts import the error classes from the entry, not a copy.
    expect(new Set(Object.values(buildInfo.deferred))).toEqual(new Set(['./cache.mjs', './middleware.mjs', './aws-clients.mjs', './oauth.mjs']));
    const copies = Object.entries(buildInfo.outputs).filter(([file, output]) => file !== 'index.mjs' && output.inputs.includes('src/errors.ts'));
    expect(copies).toEqual([]);
  });

  it("the entry's stand-ins behave as what they stand for: same exports and constants as the package, new, instanceof, extends, statics, the very error classes thrown", async () => {
    const layer = (await import(pathToFileURL(join(root, 'layer/nodejs/node_modules/dynamo-cache/index.mjs')).href)) as typeof Library;
    const library: Record<string, unknown> = await import(pathToFileURL(join(root, 'dist/index.js')).href);
    const entry: Record<string, unknown> = layer;
    expect(Object.keys(entry).sort()).toEqual(Object.keys(library).sort());
    for (const [name, value] of Object.entries(library)) {
      if (typeof value === 'function') expect({ name, type: typeof entry[name] }).toEqual({ name, type: 'function' });
      else expect({ name, value: entry[name] }).toEqual({ name, value });
    }
    const options = { tableName: 'stand-ins', clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger() };
    const cache = new layer.DynamoCache(options);
    expect(cache).toBeInstanceOf(layer.DynamoCache);
    expect(layer.DynamoCache.isDynamoCache(cache)).toBe(true);
    class Subclass extends layer.DynamoCache {
      named = 'sub';
    }
    const sub = new Subclass(options);
    expect([sub instanceof layer.DynamoCache, sub instanceof Subclass, sub.named, sub.tableName]).toEqual([true, true, 'sub', 'stand-ins']);
    // Bad input throws the entry's own error classes, from inside the deferred implementation.
    await expect(cache.get('')).rejects.toBeInstanceOf(layer.InvalidKeyError);
    expect(() => new layer.DynamoCache({ ...options, noSuchOption: 1 } as never)).toThrow(layer.InvalidOptionsError);
    expect(() => layer.dynamoCache({ cache: 'not a cache' } as never)).toThrow(layer.InvalidOptionsError);
    expect(layer.hasExpired(1)).toBe(true);
  });

  it('the CommonJS entry is one line that requires the ES module entry', async () => {
    const entry = await readFile(join(root, 'layer/nodejs/node_modules/dynamo-cache/index.cjs'), 'utf8');
    expect(entry.split('\n').filter((line) => line !== '' && !line.startsWith('//') && line !== "'use strict';")).toEqual(["module.exports = require('./index.mjs');"]);
  });

  it('serves both import and require from its package.json', async () => {
    const manifest = JSON.parse(await readFile(join(root, 'layer/nodejs/node_modules/dynamo-cache/package.json'), 'utf8'));
    expect(manifest.exports['.']).toEqual({ import: './index.mjs', require: './index.cjs' });
  });
});
