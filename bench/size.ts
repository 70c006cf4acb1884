/**
 * `npm run size`: builds the layer, measures its size and what it costs a cold start (the bench's
 * cold-start scenario, bench/scenarios/cold-start.ts), prints the figures against the budgets below (exit
 * code 1 when one is exceeded), and writes that section into BENCHMARKS.md (and bench/results.json) in place
 * of the one the last `npm run bench` wrote, leaving every other section as it was.
 *
 * Load times come from fresh Node processes, interleaved, each an ES module (as the Lambda runtime's own
 * bootstrap is) that loads the way a function does: by `import` (an ES module function) or by `require` (a
 * CommonJS one, which SAM's esbuild builder emits by default). For each way, one process loads the AWS SDK
 * client alone (the runtime loads it for any function that talks to DynamoDB), the next loads the SDK client
 * and then the layer's entry, whose load is timed on its own (the SDK already loaded): far steadier than the
 * difference of two whole-process times. The budget is a share of the SDK client's own load time, the
 * median of the adjacent pairs' shares, so that a busy machine slows both sides of each ratio alike.
 */
import { execFileSync } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
// A cycle (the scenario measures with this file's functions), harmless: neither runs the other at import.
import { coldStart } from './scenarios/cold-start.ts';
import { writeSection } from './support/report.ts';

const root = join(import.meta.dirname, '..');
const layerEntry = join(root, 'layer/nodejs/node_modules/dynamo-cache');

/** Budgets quoted in docs/layer-and-template.md. */
export const BUDGETS = {
  layerBytes: 512 * 1024,
  /**
   * What a deployment uploads and Lambda fetches once per environment, not what a cold start parses (the share
   * below budgets that). 128 KiB since the fleet lease, tags, batches and HTTP revalidation (100 KiB before).
   */
  layerZipBytes: 128 * 1024,
  /** The layer entry's own load, as a share of the SDK client's load, for `import` and for `require`. */
  ownLoadShare: 0.03,
};

/** How a function loads a package: an ES module `import`s it, a CommonJS module `require()`s it. */
export type LoadMode = 'import' | 'require';
export const LOAD_MODES: readonly LoadMode[] = ['import', 'require'];

/** Median and quartiles of some figures. */
export interface Spread {
  readonly median: number;
  readonly p25: number;
  readonly p75: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.round((sorted.length - 1) * p)]!;
  return { median: at(0.5), p25: at(0.25), p75: at(0.75) };
}

/** Runs `script` in a fresh Node process, an ES module that has `require` too, and returns what it printed, as numbers. */
function freshProcess(script: string): number[] {
  const withRequire = `const require=process.getBuiltinModule('node:module').createRequire(${JSON.stringify(`${root}/`)});${script}`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', withRequire], { cwd: root, encoding: 'utf8' }).split(' ').map(Number);
}

/** The statement that loads `specifier` (a package name or a file path) one way or the other. */
function load(mode: LoadMode, specifier: string): string {
  const target = specifier.startsWith('/') && mode === 'import' ? pathToFileURL(specifier).href : specifier;
  return mode === 'import' ? `await import(${JSON.stringify(target)});` : `require(${JSON.stringify(target)});`;
}

/** Load times of the layer's entry one way (ms), from interleaved pairs of fresh processes. */
export interface LayerLoad {
  /** The SDK client alone. */
  readonly sdk: Spread;
  /** The layer's entry, after the SDK client: its own cost. */
  readonly own: Spread;
  /** `own / sdk` of each adjacent pair of processes. */
  readonly share: Spread;
  /** What the first use of `DynamoCache` loads after that (the cache's implementation, deferred by the entry). */
  readonly cacheOnFirstUse: Spread;
}

/** `runs` interleaved pairs of fresh processes for each way of loading the layer's entry. */
export function layerLoads(runs: number): Record<LoadMode, LayerLoad> {
  const times = Object.fromEntries(LOAD_MODES.map((mode) => [mode, { sdk: [] as number[], own: [] as number[], share: [] as number[], first: [] as number[] }]));
  for (let i = 0; i < runs; i++) {
    for (const mode of LOAD_MODES) {
      const entry = join(layerEntry, mode === 'import' ? 'index.mjs' : 'index.cjs');
      const [sdk] = freshProcess(`const t=performance.now();${load(mode, '@aws-sdk/client-dynamodb')}process.stdout.write(String(performance.now()-t));`);
      const [own, first] = freshProcess(
        `${load(mode, '@aws-sdk/client-dynamodb')}const t=performance.now();const m=${load(mode, entry).replace(/;$/, '')};const u=performance.now();m.DynamoCache.isDynamoCache(undefined);process.stdout.write((u-t)+' '+(performance.now()-u));`,
      );
      const figures = times[mode]!;
      figures.sdk.push(sdk!);
      figures.own.push(own!);
      figures.share.push(own! / sdk!);
      figures.first.push(first!);
    }
  }
  return Object.fromEntries(LOAD_MODES.map((mode) => [mode, { sdk: spread(times[mode]!.sdk), own: spread(times[mode]!.own), share: spread(times[mode]!.share), cacheOnFirstUse: spread(times[mode]!.first) }])) as Record<LoadMode, LayerLoad>;
}

/**
 * What importing each group of packages costs on top of the SDK client (ms, median of `runs` fresh
 * processes, the groups interleaved): each process imports the SDK client, then the group, timed on its own.
 */
export function ownImportMs(groups: ReadonlyArray<readonly string[]>, runs = 11): number[] {
  const times = groups.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    groups.forEach((specifiers, g) => {
      const imports = specifiers.map((specifier) => load('import', specifier)).join('');
      times[g]!.push(freshProcess(`${load('import', '@aws-sdk/client-dynamodb')}const t=performance.now();${imports}process.stdout.write(String(performance.now()-t));`)[0]!);
    });
  }
  return times.map((t) => spread(t).median);
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** Builds the layer and measures it: sizes, and load times both ways. */
export async function measureLayer(runs = 11) {
  execFileSync(process.execPath, [join(root, 'build.mjs'), '--zip'], { cwd: root, stdio: 'pipe' });
  const library = (await readdir(layerEntry)).filter((file) => file.endsWith('.mjs'));
  return {
    layerBytes: await folderBytes(join(root, 'layer/nodejs')),
    layerZipBytes: (await readFile(join(root, 'layer.zip'))).byteLength,
    /** The entry a function loads (index.mjs). */
    entryBytes: (await stat(join(layerEntry, 'index.mjs'))).size,
    /** All of dynamo-cache's own code: the entry, the parts it loads on first use, their chunks. */
    libraryBytes: (await Promise.all(library.map(async (file) => (await stat(join(layerEntry, file))).size))).reduce((a, b) => a + b, 0),
    loads: layerLoads(runs),
  };
}

export type LayerFigures = Awaited<ReturnType<typeof measureLayer>>;

/** Each budget against its figure: `[what, measured, budget, met]`. */
export function layerBudgets(layer: LayerFigures): Array<[string, string, string, boolean]> {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  const percent = (share: number) => `${(share * 100).toFixed(1)} %`;
  return [
    ['layer, unzipped (dynamo-cache + @middy/core)', kib(layer.layerBytes), `<= ${kib(BUDGETS.layerBytes)}`, layer.layerBytes <= BUDGETS.layerBytes],
    ['layer.zip', kib(layer.layerZipBytes), `<= ${kib(BUDGETS.layerZipBytes)}`, layer.layerZipBytes <= BUDGETS.layerZipBytes],
    ...LOAD_MODES.map((mode): [string, string, string, boolean] => {
      const { own, sdk, share } = layer.loads[mode];
      return [
        `the layer entry's own ${mode}, share of the SDK client's ${mode}`,
        `${percent(share.median)} (${own.median.toFixed(2)} of ${sdk.median.toFixed(0)} ms)`,
        `<= ${percent(BUDGETS.ownLoadShare)}`,
        share.median <= BUDGETS.ownLoadShare,
      ];
    }),
  ];
}

if (import.meta.main) {
  const section = await coldStart({ quick: false, log: (message) => process.stderr.write(`${message}\n`) });
  const layer = (section.data as { layer: LayerFigures }).layer;
  const rows = layerBudgets(layer);
  console.log(`Layer size and cold start (median of 11 interleaved pairs of fresh Node ${process.version} processes for each way of loading)\n`);
  for (const [what, value, budget, ok] of rows) console.log(`${ok ? 'ok  ' : 'OVER'} ${what.padEnd(62)} ${value.padStart(26)}  ${budget}`);
  for (const mode of LOAD_MODES) {
    console.log(`     then, on the first use of DynamoCache (${mode}): ${layer.loads[mode].cacheOnFirstUse.median.toFixed(2)} ms to load the cache's implementation`);
  }
  await writeSection(section, 'npm run size');
  console.log('\nwrote the cold start section of BENCHMARKS.md and bench/results.json');
  if (rows.some(([, , , ok]) => !ok)) process.exitCode = 1;
}
