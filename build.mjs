// Builds dynamo-cache:
// - dist/: the npm package (ESM and CommonJS bundles of the library, the `dynamo-cache` CLI, and type
//   declarations twice: .d.ts for `import`, .d.cts for `require`, so each condition gets types of its own format);
// - layer/nodejs/node_modules/: the Lambda layer (dynamo-cache with its own dependencies bundled, and
//   @middy/core for functions that use the middleware), leaving @aws-sdk/* and @smithy/* to the runtime.
// Usage: node build.mjs [--zip]   (--zip also writes layer.zip, the layer's deployment archive)
import { build } from 'esbuild';
import { zipSync } from 'fflate';
import { execFileSync } from 'node:child_process';
import { chmod, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

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
  await chmod(join(dist, 'cli.js'), 0o755);
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  await writeDeclarations(join(dist, 'types'));
}

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
  // One bundle, minified (smaller to ship, and less to parse at a cold start). `require` finds it through a
  // one-line CommonJS entry: Node 22.12+ (every nodejs22.x and nodejs24.x runtime) loads an ES module with
  // require(). The other way round, an ES module entry importing a CommonJS bundle, would cost 15-40 ms.
  const { metafile } = await build({ ...common, external: runtimeProvided, minify: true, metafile: true, entryPoints: ['src/index.ts'], outfile: join(out, 'index.mjs'), format: 'esm', plugins: [builtinsWithoutFacades] });
  // What went into the bundle, by package (minified code names none): for the layer tests, not shipped.
  const packages = new Set(Object.keys(metafile.inputs).map((file) => file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1] ?? '(dynamo-cache)'));
  await writeFile(join(layerRoot, 'bundled-packages.json'), `${JSON.stringify([...packages].sort(), null, 2)}\n`);
  await buildOnDemand(out);
  await writeFile(join(out, 'index.cjs'), "'use strict';\n// The layer's one bundle is the ES module beside this file; Node 22.12+ loads it with require().\nmodule.exports = require('./index.mjs');\n");
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
  await writeLicenses(out, [...packages].filter((name) => name !== '(dynamo-cache)').concat(ON_DEMAND_PACKAGES));
  // Only what runs: no README, no type declarations (a function that type-checks has @middy/core installed).
  for (const name of ['core', 'util']) {
    await cp(join(root, 'node_modules', '@middy', name), join(layerModules, '@middy', name), {
      recursive: true,
      dereference: true,
      filter: (source) => !/\.d\.ts$|README\.md$/.test(source),
    });
  }
}

/**
 * Node's own modules (`node:crypto`, `node:timers/promises`...), imported by the library and its bundled
 * dependencies, are reached with `process.getBuiltinModule()` rather than `import`: an ES module import of a
 * built-in module makes Node build an ES module facade of it (every export of node:crypto, for one), about
 * 0.1 ms each at every cold start, for five of them (measured with `npm run size`). The generated module
 * exports each name of the built-in module; the bundler keeps the ones used.
 */
const builtinsWithoutFacades = {
  name: 'builtins-without-facades',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, async (args) => {
      const names = Object.keys(await import(args.path)).filter((name) => name !== 'default' && /^[A-Za-z_$][\w$]*$/.test(name));
      const exports = names.map((name) => `export const ${name} = /* @__PURE__ */ (() => builtin.${name})();`);
      return { contents: [`const builtin = process.getBuiltinModule(${JSON.stringify(args.path)});`, ...exports, 'export default builtin;'].join('\n'), loader: 'js' };
    });
  },
};

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

/** layer.zip: `nodejs/node_modules/...` at the archive's root, as Lambda expects. */
async function zipLayer() {
  const files = {};
  for (const entry of await readdir(join(layerRoot, 'nodejs'), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    files[relative(layerRoot, file).split('\\').join('/')] = [await readFile(file), { mtime: new Date('2026-01-01T00:00:00Z') }];
  }
  await writeFile(join(root, 'layer.zip'), zipSync(files, { level: 9 }));
}

await mkdir(layerRoot, { recursive: true });
await buildPackage();
await buildLayer();
if (process.argv.includes('--zip')) await zipLayer();
