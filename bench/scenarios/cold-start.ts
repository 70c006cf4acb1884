import { BUDGETS, coldImportMs, measureLayer, type Spread } from '../size.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';

/** Cold start: the layer's size and the time a fresh Node process takes to import each library's entry. */
export async function coldStart(ctx: BenchContext): Promise<Section> {
  const runs = ctx.quick ? 5 : 11;
  ctx.log('cold start');
  const layer = await measureLayer(runs);
  const imports = [
    { name: '@aws-sdk/client-dynamodb alone (what any DynamoDB function loads)', ms: layer.sdkImportMs },
    { name: 'dynamo-cache layer entry (with the SDK client)', ms: layer.layerImportMs },
    { name: '@aws-lambda-powertools/idempotency + /dynamodb + /middleware', ms: coldImportMs(['@aws-lambda-powertools/idempotency', '@aws-lambda-powertools/idempotency/dynamodb', '@aws-lambda-powertools/idempotency/middleware'], runs) },
    { name: 'keyv + @keyv/dynamo', ms: coldImportMs(['keyv', '@keyv/dynamo'], runs) },
    { name: 'cacheable + keyv + @keyv/dynamo', ms: coldImportMs(['cacheable', 'keyv', '@keyv/dynamo'], runs) },
  ];
  const powertools = imports[2]!;
  return {
    id: 'cold-start',
    title: 'Cold start: layer size and import time',
    summary: `Median of ${runs} fresh Node ${process.version} processes importing each entry (wall time of the import alone). The layer is measured in interleaved pairs of fresh processes: one imports the SDK client alone, the next the SDK client and then the layer, whose import is timed on its own (median and quartiles below). Budgets (npm run size): layer <= ${BUDGETS.layerBytes / 1024} KiB unzipped and <= ${BUDGETS.layerZipBytes / 1024} KiB zipped; the layer's own import <= ${BUDGETS.ownImportMs} ms on top of the SDK client.`,
    tables: [
      {
        title: 'Layer',
        columns: ['what', 'size'],
        rows: [
          ['layer unzipped (dynamo-cache + @middy/core)', `${count(layer.layerBytes / 1024)} KiB`],
          ['layer.zip', `${count(layer.layerZipBytes / 1024)} KiB`],
          ['dynamo-cache bundle (index.mjs)', `${count(layer.libraryBytes / 1024)} KiB`],
        ],
      },
      { title: 'Import in a fresh process', columns: ['entry', 'median ms', 'on top of the SDK client'], rows: imports.map((i) => [i.name, ms(i.ms), ms(i.ms - layer.sdkImportMs)]) },
      {
        title: 'The layer entry, interleaved pairs of fresh processes',
        columns: ['import', 'median ms', '25th percentile', '75th percentile'],
        rows: [
          ['SDK client alone', layer.imports.sdk],
          ['SDK client, then the layer', layer.imports.withEntry],
          ['the layer alone, after the SDK client (its own cost)', layer.imports.own],
          ['difference of the two processes above (noisy)', layer.imports.difference],
        ].map(([name, x]) => [name as string, ms((x as Spread).median), ms((x as Spread).p25), ms((x as Spread).p75)]),
      },
    ],
    data: { layer, imports },
    headlines: [`the layer is ${count(layer.layerZipBytes / 1024)} KiB zipped and adds ${ms(layer.ownImportMs)} ms to a cold start on top of the SDK client (Powertools idempotency adds ${ms(powertools.ms - layer.sdkImportMs)} ms)`],
  };
}
