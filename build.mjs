// Builds dynamo-cache:
// - dist/: the npm package (ESM and CommonJS bundles of the library, the `dynamo-cache` CLI, and type
//   declarations twice: .d.ts for `import`, .d.cts for `require`, so each condition gets types of its own format);
// - layer/nodejs/node_modules/: the Lambda layer (dynamo-cache with its own dependencies bundled, and
//   @middy/core for functions that use the middleware), leaving @aws-sdk/* and @smithy/* to the runtime.
// - dist/layer.zip: the layer's deployment archive, which the package ships for dynamo-cache/cdk.
// Usage: node build.mjs [--zip]   (--zip also copies it to layer.zip)
import { build, transform } from 'esbuild';
import { zipSync } from 'fflate';
import { execFileSync } from 'node:child_process';
import { chmod, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = import.meta.dirname;
const dist = join(root, 'dist');
const layerRoot = join(root, 'layer');
const layerModules = join(layerRoot, 'nodejs', 'node_modules');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));

/** Options shared by every bundle: Node 22, the runtime of `nodejs22.x` and `nodejs24.x`. */
const common = { bundle: true, platform: 'node', target: 'node22', logLevel: 'warning', legalComments: 'none' };

/**
 * The Lambda Node.js runtimes ship AWS SDK v3 (@aws-sdk/* and @smithy/*). A copy in a layer would shadow
 * the runtime's for every function that attaches it, so the layer leaves them out.
 */
const runtimeProvided = ['@aws-sdk/*', '@smithy/*'];


async function buildPackage() {
  await rm(dist, { recursive: true, force: true });
  // The npm package leaves every dependency to the installer. No source maps: the bundles are not minified, so
  // stack traces already point at readable code, and maps would be most of the tarball.
  const external = { packages: 'external' };
  await build({ ...common, ...external, entryPoints: ['src/index.ts'], outfile: join(dist, 'index.js'), format: 'esm' });
  // src/on-demand.ts reads import.meta.url only where __filename is undefined (ES modules): silence the warning.
  await build({ ...common, ...external, entryPoints: ['src/index.ts'], outfile: join(dist, 'index.cjs'), format: 'cjs', logOverride: { 'empty-import-meta': 'silent' } });
  await build({ ...common, ...external, entryPoints: ['src/cli/bin.ts'], outfile: join(dist, 'cli.js'), format: 'esm', banner: { js: '#!/usr/bin/env node' } });
  // Subpath exports (`dynamo-cache/keyv`, `dynamo-cache/cdk`), ESM and CommonJS each.
  for (const [name, { entry, plugins }] of Object.entries(SUBPATHS)) {
    await build({ ...common, ...external, entryPoints: [entry], outfile: join(dist, `${name}.js`), format: 'esm', plugins });
    await build({ ...common, ...external, entryPoints: [entry], outfile: join(dist, `${name}.cjs`), format: 'cjs', plugins, logOverride: { 'empty-import-meta': 'silent' } });
  }
  await chmod(join(dist, 'cli.js'), 0o755);
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  await writeDeclarations(join(dist, 'types'));
}

/**
 * A subpath bundle imports the library's own classes from the package's main entry (`dynamo-cache`), not a
 * copy of them: a `DynamoCache` given to the Keyv store is the application's, and `instanceof` holds.
 */
const fromTheMainEntry = {
  name: 'from-the-main-entry',
  setup(b) {
    b.onResolve({ filter: /^\.\.\// }, (args) => (args.importer.startsWith(join(root, 'src')) ? { path: 'dynamo-cache', external: true } : undefined));
  },
};

/**
 * The AWS SDK's packages declare no side effects (`"sideEffects": false`), which esbuild does not read for
 * an external package: an import of them that nothing uses is then dropped.
 */
const sdkWithoutSideEffects = {
  name: 'sdk-without-side-effects',
  setup(b) {
    b.onResolve({ filter: /^@aws-sdk\// }, (args) => ({ path: args.path, external: true, sideEffects: false }));
  },
};

/**
 * The package's subpath exports. `dynamo-cache/cdk` bundles the few constants it shares with the library
 * instead, and never imports the AWS SDK: a CDK app need not have it installed.
 */
const SUBPATHS = {
  keyv: { entry: 'src/keyv/keyv-dynamo-cache.ts', plugins: [fromTheMainEntry] },
  cdk: { entry: 'src/cdk/dynamo-cache-resources.ts', plugins: [sdkWithoutSideEffects] },
};

/** A relative module specifier in a declaration file: `from './x.ts'`, and its extension. */
const relativeSpecifier = /(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g;

/**
 * tsc keeps the sources' `./x.ts` specifiers; consumers resolve `./x.js` (ESM, `.d.ts`) and `./x.cjs`
 * (CommonJS, `.d.cts`). In the `.d.cts` copy, type imports of ES-module-only packages (@middy/core has no
 * `require` condition) say so with `resolution-mode`, or a `require` consumer could not resolve them.
 */
async function writeDeclarations(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(relativeSpecifier, '$1.js$2'));
    const commonJs = text
      .replace(relativeSpecifier, '$1.cjs$2')
      .replace(/^(import type .+ from '@middy\/core');$/gm, "$1 with { 'resolution-mode': 'import' };");
    await writeFile(file.replace(/\.d\.ts$/, '.d.cts'), commonJs);
  }
}

async function buildLayer() {
  await rm(join(layerRoot, 'nodejs'), { recursive: true, force: true });
  const out = join(layerModules, 'dynamo-cache');
  const facade = await layerFacade();
  // Minified ES modules (smaller to ship, and less to parse at a cold start). The entry, index.mjs, is the
  // facade below; the deferred parts of the library are one ES module each, with the code they share in
  // chunks, so each class exists once whichever part loads first. `require` finds the entry through a
  // one-line CommonJS file: Node 22.12+ (every nodejs22.x and nodejs24.x runtime) loads an ES module with
  // require(). The other way round, an ES module entry importing a CommonJS bundle, would cost 15-40 ms.
  const shared = { ...common, external: runtimeProvided, minify: true, metafile: true, format: 'esm' };
  const entry = await build({ ...shared, entryPoints: [FACADE], outfile: join(out, 'index.mjs'), plugins: [withoutFacades, virtualModule(FACADE, facade.code)] });
  const parts = await build({
    ...shared,
    splitting: true,
    entryPoints: facade.entryPoints,
    outdir: out,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'shared-[hash]',
    plugins: [withoutFacades, fromTheEntry],
  });
  // What went into the layer (minified code names none): for the layer tests and `npm run size`, not shipped.
  const inputs = [...Object.keys(entry.metafile.inputs), ...Object.keys(parts.metafile.inputs)];
  const packages = new Set(inputs.map((file) => file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1] ?? '(dynamo-cache)'));
  const outputs = Object.fromEntries(
    Object.entries({ ...entry.metafile.outputs, ...parts.metafile.outputs }).map(([file, output]) => [
      relative(out, file),
      { bytes: output.bytes, imports: [...new Set(output.imports.map((i) => (i.external ? i.path : relative(out, i.path))))], inputs: Object.keys(output.inputs) },
    ]),
  );
  await writeFile(join(layerRoot, 'build-info.json'), `${JSON.stringify({ bundledPackages: [...packages].sort(), deferred: facade.deferred, outputs }, null, 2)}\n`);
  await buildOnDemand(out);
  await writeFile(join(out, 'index.cjs'), "'use strict';\n// The layer's entry is the ES module beside this file; Node 22.12+ loads it with require().\nmodule.exports = require('./index.mjs');\n");
  await writeFile(
    join(out, 'package.json'),
    `${JSON.stringify(
      {
        name: pkg.name,
        version: pkg.version,
        description: `${pkg.description} (Lambda layer build: dependencies bundled, AWS SDK from the runtime)`,
        license: pkg.license,
        exports: { '.': { import: './index.mjs', require: './index.cjs' }, './package.json': './package.json' },
        main: './index.cjs',
      },
      null,
      2,
    )}\n`,
  );
  // Functions that attach the layer get Middy too, so they need not bundle anything to use the middleware.
  await cp(join(root, 'LICENSE'), join(out, 'LICENSE'));
  await writeLicenses(out, [...packages].filter((name) => name !== '(dynamo-cache)').concat(ON_DEMAND_PACKAGES, MIDDY_PACKAGES));
  // Only what runs: no README, no type declarations (a function that type-checks has @middy/core installed);
  // each module minified on its own (same modules, same exports), which keeps the zip within its budget.
  for (const name of MIDDY_PACKAGES) {
    const folder = join(layerModules, name);
    await cp(join(root, 'node_modules', name), folder, { recursive: true, dereference: true, filter: (source) => !/\.d\.ts$|README\.md$/.test(source) });
    for (const file of (await readdir(folder, { recursive: true })).filter((f) => f.endsWith('.js'))) {
      const { code } = await transform(await readFile(join(folder, file), 'utf8'), { minify: true, target: 'node22', legalComments: 'inline' });
      await writeFile(join(folder, file), code);
    }
  }
}

/** Middy, shipped beside dynamo-cache so that functions need not bundle anything to use the middleware. */
const MIDDY_PACKAGES = ['@middy/core', '@middy/util'];

const FACADE = 'dynamo-cache:facade';

/** An esbuild plugin that resolves `specifier` to the JavaScript `code`. */
function virtualModule(specifier, code) {
  return {
    name: specifier,
    setup(b) {
      b.onResolve({ filter: new RegExp(`^${specifier}$`) }, () => ({ path: specifier, namespace: 'virtual' }));
      b.onLoad({ filter: /.*/, namespace: 'virtual' }, () => ({ contents: code, resolveDir: root, loader: 'js' }));
    },
  };
}

/**
 * Modules of src/ that the layer's entry holds: the error classes, which the deferred parts import from the
 * entry (a function's `instanceof` must see the very classes the implementation throws); and, copied into
 * the entry as well as into the parts that use them, the pure helpers of refresh/ (called per request: no
 * stand-in in between).
 */
const ENTRY_MODULES = new Set(['./errors.ts', './oauth/errors.ts']);
const COPIED_MODULES = new Set(['./refresh/freshness.ts', './refresh/expiry.ts']);

/** Resolves the deferred parts' imports of ENTRY_MODULES to the entry itself. */
const fromTheEntry = {
  name: 'from-the-entry',
  setup(b) {
    const files = new Set([...ENTRY_MODULES].map((from) => join(root, 'src', from)));
    b.onResolve({ filter: /errors\.ts$/ }, (args) => (files.has(join(args.resolveDir, args.path)) ? { path: './index.mjs', external: true } : undefined));
  },
};

/**
 * The layer's entry: it loads none of the implementation. Every function that attaches the layer imports it
 * at each cold start, but uses some of it (a function that only caches values never runs the middleware, the
 * AWS client cache or the token provider), and some of it only later (on a first request): so each class
 * and function exported from another module of src/index.ts is a stand-in that loads its part with
 * `require()` (synchronous) on first use (`new`, a call, or reading a static member) and forwards to it;
 * `instanceof`, `extends` and static members work through it. Constants are written in by value. Which
 * names come from which module is read from src/index.ts, the values from the package's own build.
 */
async function layerFacade() {
  const source = await readFile(join(root, 'src/index.ts'), 'utf8');
  const library = await import(pathToFileURL(join(dist, 'index.js')).href);
  const moduleOf = new Map();
  for (const [, names, from] of source.matchAll(/^export \{([^}]*)\} from '([^']+)';$/gms)) {
    for (const name of names.split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type '))) moduleOf.set(name, from);
  }
  const lines = [
    `const load = (file) => process.getBuiltinModule('node:module').createRequire(import.meta.url)(file);`,
    // A plain function as the target: a proxy is callable and constructible only if its target is.
    'const deferred = (file, name) => {',
    '  let real;',
    '  const r = () => (real ??= load(file)[name]);',
    '  return new Proxy(function () {}, {',
    '    get: (_, key) => Reflect.get(r(), key),',
    '    set: (_, key, value) => Reflect.set(r(), key, value),',
    '    has: (_, key) => Reflect.has(r(), key),',
    '    apply: (_, self, args) => Reflect.apply(r(), self, args),',
    '    construct: (_, args, newTarget) => Reflect.construct(r(), args, newTarget),',
    '  });',
    '};',
  ];
  const entryPoints = {};
  const deferred = {};
  for (const name of Object.keys(library).sort()) {
    const from = moduleOf.get(name);
    if (from === undefined) throw new Error(`build.mjs: ${name} is exported by the package but not by an 'export { ... } from' line of src/index.ts`);
    const value = library[name];
    if (ENTRY_MODULES.has(from) || COPIED_MODULES.has(from)) lines.push(`export { ${name} } from ${JSON.stringify(join(root, 'src', from))};`);
    else if (typeof value !== 'function') lines.push(`export const ${name} = ${JSON.stringify(value)};`);
    else {
      // Named after the concept: its folder in src/ (cache.ts: cache).
      const part = from.split('/')[1].replace(/\.ts$/, '');
      if (entryPoints[part] !== undefined && entryPoints[part] !== join(root, 'src', from)) throw new Error(`build.mjs: two deferred modules in src/${part}/`);
      entryPoints[part] = join(root, 'src', from);
      deferred[name] = `./${part}.mjs`;
      lines.push(`export const ${name} = deferred(${JSON.stringify(`./${part}.mjs`)}, ${JSON.stringify(name)});`);
    }
  }
  return { code: lines.join('\n'), entryPoints, deferred };
}

/**
 * Modules the bundle reaches without an ES module `import`, which would make Node build an ES module facade
 * of each at every cold start:
 * - Node's own modules (`node:crypto`, `node:timers/promises`...), imported by the library and its bundled
 *   dependencies, through `process.getBuiltinModule()` (the facade of node:crypto alone has every export;
 *   about 0.1 ms each, for five of them);
 * - the runtime's AWS SDK, a CommonJS package, through `require()`: an `import` of it builds a facade of its
 *   every export (24-44 ms), which an ES module function pays anyway when it imports the SDK itself, but a
 *   CommonJS function, which `require()`s both the SDK and this layer, would pay on top (`npm run size`).
 *   `require` finds the runtime's copy the way the function's own `require` does (NODE_PATH), and gets the
 *   very module object an `import` of the SDK evaluated, if one did.
 * The generated module exports each name of the real one; the bundler keeps the ones used.
 */
const withoutFacades = {
  name: 'without-facades',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'builtin' }));
    b.onResolve({ filter: /^@aws-sdk\// }, (args) => ({ path: args.path, namespace: 'runtime' }));
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, async (args) => reexport(args.path, await import(args.path), `process.getBuiltinModule(${JSON.stringify(args.path)})`));
    b.onLoad({ filter: /.*/, namespace: 'runtime' }, (args) =>
      reexport(args.path, requireFromRoot(args.path), `process.getBuiltinModule('node:module').createRequire(import.meta.url)(${JSON.stringify(args.path)})`),
    );
  },
};

const requireFromRoot = createRequire(join(root, 'package.json'));

/** An ES module that exports each name of `real` (a module's namespace), read from `expression` when loaded. */
function reexport(specifier, real, expression) {
  const names = Object.keys(real).filter((name) => name !== 'default' && name !== '__esModule' && /^[A-Za-z_$][\w$]*$/.test(name));
  const exports = names.map((name) => `export const ${name} = /* @__PURE__ */ (() => reached.${name})();`);
  return { contents: [`// ${specifier}`, `const reached = ${expression};`, ...exports, 'export default reached;'].join('\n'), loader: 'js' };
}

/**
 * Dependencies the library loads on first use (src/on-demand.ts), not at import: each is its own minified
 * CommonJS file in dynamo-cache's private node_modules folder, where its require() finds it (and nothing
 * else does: a function's own copy of these packages is never shadowed). The JMESPath engine and its
 * functions are one file, since the functions' errors must be the engine's own classes.
 */
async function buildOnDemand(out) {
  const modules = {
    '@aws-lambda-powertools/jmespath': {
      code: "module.exports = { ...require('@aws-lambda-powertools/jmespath'), ...require('@aws-lambda-powertools/jmespath/functions') };",
      aliases: ['functions'],
    },
    '@aws-lambda-powertools/logger': { code: "module.exports = require('@aws-lambda-powertools/logger');", aliases: [] },
    '@aws-lambda-powertools/commons': { code: "module.exports = require('@aws-lambda-powertools/commons');", aliases: [] },
    'http-cache-semantics': { code: "module.exports = require('http-cache-semantics');", aliases: [] },
  };
  for (const [name, { code, aliases }] of Object.entries(modules)) {
    const folder = join(out, 'node_modules', name);
    const manifest = JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8'));
    await build({ ...common, external: runtimeProvided, minify: true, format: 'cjs', stdin: { contents: code, resolveDir: root, loader: 'js' }, outfile: join(folder, 'index.js') });
    await writeFile(join(folder, 'package.json'), `${JSON.stringify({ name, version: manifest.version, license: manifest.license, private: true, main: 'index.js' }, null, 2)}\n`);
    for (const alias of aliases) await writeFile(join(folder, `${alias}.js`), "module.exports = require('./index.js');\n");
  }
}

/** The packages src/on-demand.ts loads, with their dependencies that end up in the layer's files. */
const ON_DEMAND_PACKAGES = ['@aws-lambda-powertools/jmespath', '@aws-lambda-powertools/logger', '@aws-lambda-powertools/commons', '@aws/lambda-invoke-store', 'http-cache-semantics'];

/**
 * THIRD-PARTY-LICENSES.txt: the licence of every package whose code the layer's files carry (bundled code
 * keeps no licence comments), as their licences ask of a redistribution.
 */
async function writeLicenses(out, names) {
  const sections = [`dynamo-cache ${pkg.version} (${pkg.license}) bundles code from these packages.`];
  for (const name of [...new Set(names)].sort()) {
    const folder = join(root, 'node_modules', name);
    const manifest = JSON.parse(await readFile(join(folder, 'package.json'), 'utf8'));
    const file = (await readdir(folder)).find((entry) => /^licen[cs]e/i.test(entry));
    const text = file === undefined ? `${manifest.license} (the package ships no licence file)` : (await readFile(join(folder, file), 'utf8')).trim();
    sections.push(`${'-'.repeat(78)}\n${name} ${manifest.version} (${manifest.license})\n\n${text}`);
  }
  await writeFile(join(out, 'THIRD-PARTY-LICENSES.txt'), `${sections.join('\n\n')}\n`);
}

/** The layer's deployment archive: `nodejs/node_modules/...` at the archive's root, as Lambda expects. */
async function zipLayer(archive) {
  const files = {};
  for (const entry of await readdir(join(layerRoot, 'nodejs'), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    files[relative(layerRoot, file).split('\\').join('/')] = [await readFile(file), { mtime: new Date('2026-01-01T00:00:00Z') }];
  }
  await writeFile(archive, zipSync(files, { level: 9 }));
}

await mkdir(layerRoot, { recursive: true });
await buildPackage();
await buildLayer();
// The package ships the layer's content as dist/layer.zip: dynamo-cache/cdk builds its LayerVersion from it.
await zipLayer(join(dist, 'layer.zip'));
if (process.argv.includes('--zip')) await cp(join(dist, 'layer.zip'), join(root, 'layer.zip'));
