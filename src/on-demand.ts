import type * as Commons from '@aws-lambda-powertools/commons';
import type * as JmesPath from '@aws-lambda-powertools/jmespath';
import type * as JmesPathFunctions from '@aws-lambda-powertools/jmespath/functions';
import type * as PowertoolsLogger from '@aws-lambda-powertools/logger';
import type * as OpenTelemetryApi from '@opentelemetry/api';
import type HttpCachePolicy from 'http-cache-semantics';

/**
 * Dependencies that only some users need, loaded (synchronously) the first time they are needed rather
 * than when the package is imported: every function that attaches the layer pays its import at each cold
 * start, whether or not it memoizes responses with a JMESPath key or logs a warning. Measured in
 * BENCHMARKS.md ("Cold start").
 *
 * The layer ships each of them as its own file, which the layer's build maps these names to (build.mjs).
 */
let load: NodeJS.Require | undefined;

function requireHere(): NodeJS.Require {
  // node:module itself is loaded with the first of them, not at import.
  return (load ??= process.getBuiltinModule('node:module').createRequire(typeof __filename === 'string' ? __filename : import.meta.url));
}

function once<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requireHere()(name) as T);
}

/**
 * An optional peer dependency: required from where dynamo-cache is (its own installation, or a layer's
 * `node_modules` and `NODE_PATH`), else from the function's folder (`LAMBDA_TASK_ROOT`, or the working
 * directory), tried once; `undefined` when neither has it.
 */
function optional<T>(name: string): () => T | undefined {
  let tried = false;
  let loaded: T | undefined;
  return () => {
    if (tried) return loaded;
    tried = true;
    const places = [requireHere, () => process.getBuiltinModule('node:module').createRequire(`${process.env.LAMBDA_TASK_ROOT ?? process.cwd()}/`)];
    for (const place of places) {
      try {
        loaded = place()(name) as T;
        return loaded;
      } catch (error) {
        if ((error as NodeJS.ErrnoException)?.code !== 'MODULE_NOT_FOUND') throw error;
      }
    }
    return undefined;
  };
}

/** `@aws-lambda-powertools/jmespath`: only for a memo key given as a JMESPath expression. */
export const jmesPath = once<typeof JmesPath>('@aws-lambda-powertools/jmespath');
/** `@aws-lambda-powertools/jmespath/functions`: Powertools' JMESPath functions, with the above. */
export const jmesPathFunctions = once<typeof JmesPathFunctions>('@aws-lambda-powertools/jmespath/functions');
/** `@aws-lambda-powertools/logger`: only when no logger was given and there is something to log. */
export const powertoolsLogger = once<typeof PowertoolsLogger>('@aws-lambda-powertools/logger');
/** `@aws-lambda-powertools/commons`: the middleware's clean-up of Powertools middlewares on an early return. */
export const powertoolsCommons = once<typeof Commons>('@aws-lambda-powertools/commons');
/** `http-cache-semantics`: only when an HTTP response is memoized. */
export const httpCacheSemantics = once<typeof HttpCachePolicy>('http-cache-semantics');
/** `@opentelemetry/api` (an optional peer dependency): only once a tracer provider is registered. */
export const openTelemetryApi = optional<typeof OpenTelemetryApi>('@opentelemetry/api');
