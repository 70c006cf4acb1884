/**
 * `npm run size`: builds the layer, then prints its size and the time a fresh Node process takes to import
 * its entry, against the budgets below (exit code 1 when one is exceeded). Import times are medians of
 * fresh processes; the AWS SDK client is measured alone too, since the runtime loads it for any function
 * that talks to DynamoDB, and the layer's own cost is the difference.
 */
import { execFileSync } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');

/** Budgets quoted in the README. */
export const BUDGETS = {
  layerBytes: 1024 * 1024,
  layerZipBytes: 256 * 1024,
  /** Median ms to import the layer entry on top of the SDK client, in a fresh process. */
  ownImportMs: 40,
};

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
  const sdkMs = coldImportMs('@aws-sdk/client-dynamodb', runs);
  const layerMs = coldImportMs(entry, runs);
  return {
    layerBytes: await folderBytes(join(root, 'layer/nodejs')),
    libraryBytes: (await stat(join(root, 'layer/nodejs/node_modules/dynamo-cache/index.mjs'))).size,
    layerZipBytes: (await readFile(join(root, 'layer.zip'))).byteLength,
    sdkImportMs: sdkMs,
    layerImportMs: layerMs,
    ownImportMs: Math.max(0, layerMs - sdkMs),
  };
}

if (import.meta.main) {
  const m = await measureLayer();
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  const rows: Array<[string, string, string, boolean]> = [
    ['layer, unzipped (dynamo-cache + @middy/core)', kib(m.layerBytes), `<= ${kib(BUDGETS.layerBytes)}`, m.layerBytes <= BUDGETS.layerBytes],
    ['layer.zip', kib(m.layerZipBytes), `<= ${kib(BUDGETS.layerZipBytes)}`, m.layerZipBytes <= BUDGETS.layerZipBytes],
    ['dynamo-cache bundle (index.mjs)', kib(m.libraryBytes), '', true],
    ['cold import: @aws-sdk/client-dynamodb alone', `${m.sdkImportMs.toFixed(1)} ms`, '', true],
    ['cold import: layer entry (includes the SDK client)', `${m.layerImportMs.toFixed(1)} ms`, '', true],
    ['cold import: the layer’s own share', `${m.ownImportMs.toFixed(1)} ms`, `<= ${BUDGETS.ownImportMs} ms`, m.ownImportMs <= BUDGETS.ownImportMs],
  ];
  console.log(`Layer size and cold import (median of 11 fresh Node ${process.version} processes)\n`);
  for (const [what, value, budget, ok] of rows) console.log(`${ok ? 'ok  ' : 'OVER'} ${what.padEnd(52)} ${value.padStart(10)}  ${budget}`);
  if (rows.some(([, , , ok]) => !ok)) process.exitCode = 1;
}
