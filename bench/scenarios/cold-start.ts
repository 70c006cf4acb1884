import { BUDGETS, LOAD_MODES, layerBudgets, measureLayer, ownImportMs, type Spread } from '../size.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';

/**
 * Cold start: the layer's size, what loading its entry costs a function that `import`s it and one that
 * `require()`s it (as a share of the SDK client's own load), and other libraries' imports beside it.
 * Also run alone by `npm run size`, which writes this section into BENCHMARKS.md.
 */
export async function coldStart(ctx: Pick<BenchContext, 'quick' | 'log'>): Promise<Section> {
  const runs = ctx.quick ? 5 : 11;
  ctx.log('cold start');
  const layer = await measureLayer(runs);
  const { import: imported, require: required } = layer.loads;
  const sdkMs = imported.sdk.median;
  const others: Array<[string, string[]]> = [
    ['@aws-lambda-powertools/idempotency + /dynamodb + /middleware', ['@aws-lambda-powertools/idempotency', '@aws-lambda-powertools/idempotency/dynamodb', '@aws-lambda-powertools/idempotency/middleware']],
    ['keyv + @keyv/dynamo', ['keyv', '@keyv/dynamo']],
    ['cacheable + keyv + @keyv/dynamo', ['cacheable', 'keyv', '@keyv/dynamo']],
  ];
  const othersMs = ownImportMs(others.map(([, specifiers]) => specifiers), runs);
  const imports = [
    { name: "dynamo-cache's layer entry", ms: imported.own.median },
    { name: "dynamo-cache's layer entry, then the first use of DynamoCache", ms: imported.own.median + imported.cacheOnFirstUse.median },
    ...others.map(([name], i) => ({ name, ms: othersMs[i]! })),
  ];
  const powertools = imports[2]!;
  const percent = (share: number) => `${(share * 100).toFixed(1)} %`;
  const range = (x: Spread) => [ms(x.median), ms(x.p25), ms(x.p75)];
  return {
    id: 'cold-start',
    title: 'Cold start: layer size and import time',
    summary: [
      `Median of ${runs} interleaved pairs of fresh Node ${process.version} processes for each way a function loads the layer: an ES module \`import\`s it, a CommonJS module (what SAM's esbuild builder emits by default) \`require()\`s it. Each process is an ES module, as the Lambda runtime's bootstrap is.`,
      `In each pair, one process loads the SDK client alone, the next the SDK client and then the layer's entry, whose load is timed on its own; the budget is that time as a share of the SDK client's, the median of the pairs' shares: <= ${percent(BUDGETS.ownLoadShare)} for both ways (npm run size), with the layer <= ${BUDGETS.layerBytes / 1024} KiB unzipped and <= ${BUDGETS.layerZipBytes / 1024} KiB zipped.`,
      "The entry holds no implementation: the cache, the middleware, the AWS client cache and the token provider each load on first use (a function pays only for what it uses); the rows 'on the first use of DynamoCache' time that load, in the same processes. The layer reaches the runtime's SDK with require(), so a CommonJS function builds no ES module facade of it.",
    ].join(' '),
    tables: [
      {
        title: 'Budgets',
        columns: ['what', 'measured', 'budget', 'met'],
        rows: layerBudgets(layer).map(([what, value, budget, ok]) => [what, value, budget, ok ? 'yes' : '**no**']),
      },
      {
        title: 'Layer',
        columns: ['what', 'size'],
        rows: [
          ['layer unzipped (dynamo-cache + @middy/core)', `${count(layer.layerBytes / 1024)} KiB`],
          ['layer.zip', `${count(layer.layerZipBytes / 1024)} KiB`],
          ["dynamo-cache's entry (index.mjs)", `${count(layer.entryBytes / 1024)} KiB`],
          ["dynamo-cache's code: the entry and the parts it loads on first use", `${count(layer.libraryBytes / 1024)} KiB`],
        ],
      },
      {
        title: 'The layer entry, interleaved pairs of fresh processes (ms)',
        columns: ['load', 'median', '25th percentile', '75th percentile'],
        rows: LOAD_MODES.flatMap((mode) => [
          [`${mode}: SDK client alone`, ...range(layer.loads[mode].sdk)],
          [`${mode}: the layer's entry, after the SDK client (its own cost)`, ...range(layer.loads[mode].own)],
          [`${mode}: its share of the SDK client's ${mode} (%)`, ...[layer.loads[mode].share.median, layer.loads[mode].share.p25, layer.loads[mode].share.p75].map((x) => (x * 100).toFixed(2))],
          [`${mode}: then, on the first use of DynamoCache, the cache's implementation`, ...range(layer.loads[mode].cacheOnFirstUse)],
        ]),
      },
      {
        title: `Import in a fresh process, after the SDK client (${ms(sdkMs)} ms)`,
        columns: ['import', 'median ms', "share of the SDK client's import"],
        rows: imports.map((i) => [i.name, ms(i.ms), percent(i.ms / sdkMs)]),
      },
    ],
    data: { layer, imports },
    headlines: [
      `the layer is ${count(layer.layerZipBytes / 1024)} KiB zipped; its entry costs ${percent(imported.share.median)} of the SDK client's import (${percent(required.share.median)} of its require) and the cache's implementation ${ms(imported.cacheOnFirstUse.median)} ms more on first use (Powertools idempotency's import: ${percent(powertools.ms / sdkMs)})`,
    ],
  };
}
