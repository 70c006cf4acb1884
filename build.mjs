// Builds the package: `dist/` (ESM and CommonJS bundles of the library, with `.d.ts` types).
// Usage: node build.mjs
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const root = import.meta.dirname;
const dist = join(root, 'dist');

/** Options shared by every bundle: Node 22, the runtime of `nodejs22.x` and `nodejs24.x`. */
const common = { bundle: true, platform: 'node', target: 'node22', sourcemap: true, logLevel: 'warning' };

async function buildPackage() {
  await rm(dist, { recursive: true, force: true });
  // The npm package leaves every dependency to the installer.
  await build({ ...common, entryPoints: ['src/index.ts'], outfile: join(dist, 'index.js'), format: 'esm', packages: 'external' });
  await build({ ...common, entryPoints: ['src/index.ts'], outfile: join(dist, 'index.cjs'), format: 'cjs', packages: 'external' });
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  await rewriteDeclarationImports(join(dist, 'types'));
}

/** tsc keeps the sources' `./x.ts` specifiers in `.d.ts` files; consumers resolve `./x.js`. */
async function rewriteDeclarationImports(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/(from\s+['"]\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1.js$2'));
  }
}

await buildPackage();
