import type * as Commons from '@aws-lambda-powertools/commons';
import type * as JmesPath from '@aws-lambda-powertools/jmespath';
import type * as JmesPathFunctions from '@aws-lambda-powertools/jmespath/functions';
import type * as PowertoolsLogger from '@aws-lambda-powertools/logger';
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

function once<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => {
    // node:module itself is loaded with the first of them, not at import.
    load ??= process.getBuiltinModule('node:module').createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    return (loaded ??= load(name) as T);
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
