import type { Functions } from '@aws-lambda-powertools/jmespath/functions';
import type { Context } from 'aws-lambda';
import { InvalidOptionsError } from '../errors.ts';
import type { CacheLogger } from '../observability/logger.ts';
import { jmesPath, jmesPathFunctions } from '../on-demand.ts';

/**
 * How a request's memo key is made, for events the default HTTP key does not fit: a JMESPath expression
 * over the event (as Powertools idempotency's `eventKeyJmesPath`), or a function. `undefined` (or a
 * JMESPath result of `null`) means "do not memoize this request".
 */
export type MemoKey = string | ((event: unknown, context: Context) => string | undefined);

/**
 * A custom memo key (`response.key`), ready to evaluate. JMESPath expressions get Powertools' functions
 * (`powertools_json`, `powertools_base64`, `powertools_base64_gzip`) unless `functions` replaces them, as
 * Powertools idempotency's `jmesPathOptions` does.
 */
export class CustomKey {
  readonly #key: MemoKey;
  /** The search options of an expression key (its functions); `undefined` for a function key. */
  readonly #options: { readonly customFunctions: Functions } | undefined;

  /** @throws InvalidOptionsError for a key that is neither an expression nor a function, a malformed expression, or bad `functions`. */
  constructor(key: MemoKey, functions: Functions | undefined) {
    if (typeof key !== 'string' && typeof key !== 'function') throw new InvalidOptionsError('response.key must be a JMESPath expression or a function');
    if (functions !== undefined && typeof (functions as Partial<Functions> | null)?.introspectMethods !== 'function') {
      throw new InvalidOptionsError('response.jmesPathFunctions must be an instance of Functions (or PowertoolsFunctions) from @aws-lambda-powertools/jmespath/functions');
    }
    this.#key = key;
    // The JMESPath engine loads here, for an expression; never for a function key.
    this.#options = typeof key === 'string' ? { customFunctions: functions ?? new (jmesPathFunctions().PowertoolsFunctions)() } : undefined;
    if (typeof key === 'string') this.#compileCheck(key);
  }

  /** The key's result for `event`, or `undefined` (not memoized) when it has none or fails (logged). */
  evaluate(event: unknown, context: Context, logger: CacheLogger): unknown {
    let result: unknown;
    try {
      result = typeof this.#key === 'string' ? jmesPath().search(this.#key, event as never, this.#options!) : this.#key(event, context);
    } catch (error) {
      logger.warn('dynamo-cache: memo key could not be computed; not memoized', { errorMessage: (error as Error).message });
      return undefined;
    }
    return result === undefined || result === null || result === '' ? undefined : result;
  }

  /**
   * Evaluates the expression over an empty event, so a syntax error or an unknown function fails at load
   * rather than on every request. A type error there says only that the empty event lacks the data
   * (`powertools_json(body)` on an event without `body`), not that the expression is wrong.
   */
  #compileCheck(expression: string): void {
    try {
      jmesPath().search(expression, {}, this.#options!);
    } catch (error) {
      if (error instanceof jmesPath().JMESPathTypeError) return;
      throw new InvalidOptionsError(`response.key is not a valid JMESPath expression: ${(error as Error).message}`, { cause: error });
    }
  }
}
