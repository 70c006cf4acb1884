/**
 * `npm run size`: builds the layer, then prints its size and the time a fresh Node process takes to import
 * its entry, against the budgets below (exit code 1 when one is exceeded).
 *
 * Import times come from fresh processes, interleaved: one imports the AWS SDK client alone (the runtime
 * loads it for any function that talks to DynamoDB), the next imports the SDK client and then the layer,
 * and so on. The layer's own cost is timed in the second kind of process, around its import alone (the SDK
 * already loaded), which is far steadier than the difference of two whole-process times (also reported).
 */
import { execFileSync } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');

/** Budgets quoted in docs/layer-and-template.md. */
export const BUDGETS = {
  layerBytes: 512 * 1024,
  layerZipBytes: 100 * 1024,
  /** Median ms to import the layer entry on top of the SDK client, in a fresh process. */
  ownImportMs: 4,
};

/** Median and quartiles of some times (ms). */
export interface Spread {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.round((sorted.length - 1) * p)]!;
  return { median: at(0.5), p25: at(0.25), p75: at(0.75) };
}

/** Runs `script` as an ES module in a fresh Node process and returns what it printed, as numbers. */
function freshProcess(script: string): number[] {
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }).split(' ').map(Number);
}

/**
 * Import cost of `entry` on top of the SDK client, from `runs` pairs of fresh processes, interleaved: the SDK
 * alone, then the SDK followed by `entry` (its import timed on its own).
 */
export function interleavedImport(entry: string, runs = 11): { sdk: Spread; withEntry: Spread; own: Spread; difference: Spread } {
  const sdk: number[] = [];
  const withEntry: number[] = [];
  const own: number[] = [];
  for (let i = 0; i < runs; i++) {
    sdk.push(freshProcess(`const t=performance.now();await import('@aws-sdk/client-dynamodb');process.stdout.write(String(performance.now()-t));`)[0]!);
    const [total, ownMs] = freshProcess(
      `const t=performance.now();await import('@aws-sdk/client-dynamodb');const u=performance.now();await import(${JSON.stringify(entry)});const v=performance.now();process.stdout.write((v-t)+' '+(v-u));`,
    );
    withEntry.push(total!);
    own.push(ownMs!);
  }
  return { sdk: spread(sdk), withEntry: spread(withEntry), own: spread(own), difference: spread(withEntry.map((total, i) => total - sdk[i]!)) };
}

/** Median wall time (ms) of importing `specifiers` (one after the other) in `runs` fresh Node processes. */
export function coldImportMs(specifiers: string | readonly string[], runs = 11): number {
  const imports = [specifiers].flat().map((specifier) => `await import(${JSON.stringify(specifier)});`).join('');
  const script = `const t=performance.now();${imports}process.stdout.write(String(performance.now()-t));`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    times.push(Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Measures the layer: sizes and cold import times. */
export async function measureLayer(runs = 11) {
  execFileSync(process.execPath, [join(root, 'build.mjs'), '--zip'], { cwd: root, stdio: 'pipe' });
  const entry = pathToFileURL(join(root, 'layer/nodejs/node_modules/dynamo-cache/index.mjs')).href;
  const imports = interleavedImport(entry, runs);
  return {
    layerBytes: await folderBytes(join(root, 'layer/nodejs')),
    libraryBytes: (await stat(join(root, 'layer/nodejs/node_modules/dynamo-cache/index.mjs'))).size,
    layerZipBytes: (await readFile(join(root, 'layer.zip'))).byteLength,
    sdkImportMs: imports.sdk.median,
    layerImportMs: imports.withEntry.median,
    ownImportMs: imports.own.median,
    imports,
  };
}

if (import.meta.main) {
  const m = await measureLayer();
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  const range = (x: Spread) => `${x.median.toFixed(1)} ms (${x.p25.toFixed(1)}-${x.p75.toFixed(1)})`;
  const rows: Array<[string, string, string, boolean]> = [
    ['layer, unzipped (dynamo-cache + @middy/core)', kib(m.layerBytes), `<= ${kib(BUDGETS.layerBytes)}`, m.layerBytes <= BUDGETS.layerBytes],
    ['layer.zip', kib(m.layerZipBytes), `<= ${kib(BUDGETS.layerZipBytes)}`, m.layerZipBytes <= BUDGETS.layerZipBytes],
    ['dynamo-cache bundle (index.mjs)', kib(m.libraryBytes), '', true],
    ['cold import: @aws-sdk/client-dynamodb alone', range(m.imports.sdk), '', true],
    ['cold import: SDK client, then the layer entry', range(m.imports.withEntry), '', true],
    ['  difference of the two (noisy: two processes)', range(m.imports.difference), '', true],
    ['cold import: the layer entry alone, after the SDK', range(m.imports.own), `<= ${BUDGETS.ownImportMs} ms`, m.ownImportMs <= BUDGETS.ownImportMs],
  ];
  console.log(`Layer size and cold import (median and quartiles of 11 interleaved pairs of fresh Node ${process.version} processes)\n`);
  for (const [what, value, budget, ok] of rows) console.log(`${ok ? 'ok  ' : 'OVER'} ${what.padEnd(52)} ${value.padStart(24)}  ${budget}`);
  if (rows.some(([, , , ok]) => !ok)) process.exitCode = 1;
}
