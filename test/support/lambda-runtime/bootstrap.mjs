// A minimal stand-in for the Lambda Node.js runtime interface: loads a handler the way the runtime does
// (import() for .mjs, require() for .js), invokes it once per event with a Lambda-shaped context, and prints
// the results as one JSON line. Usage: node [--import esm-node-path.mjs] bootstrap.mjs <handler file> '<events JSON>'
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [file, eventsJson] = process.argv.slice(2);
const module = file.endsWith('.mjs') ? await import(pathToFileURL(file).href) : createRequire(file)(file);
const results = [];
for (const event of JSON.parse(eventsJson)) {
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'layer-test',
    awsRequestId: `req-${results.length}`,
    getRemainingTimeInMillis: () => 30_000,
  };
  results.push(await module.handler(event, context));
}
process.stdout.write(`${JSON.stringify(results)}\n`);
