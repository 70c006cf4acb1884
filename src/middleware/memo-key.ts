import { hash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import type { QueryPair } from './http-event.ts';
import type { IdentityComponent } from './identity.ts';

/**
 * Version tag heading every encoded key tuple: a change of the key layout changes it, so keys of two
 * layouts can never meet. (Keys written by versions before it had a different, plain-text shape.) Layout 2
 * held the path's invalidation generation; its responses carry no tags, so layout 3 never reads them.
 */
const KEY_LAYOUT = 'dynamo-cache/memo/3';

/** What a memoized HTTP response is stored under: a request's typed key components. */
export interface HttpKeyParts {
  /** `keyPrefix` (the function name by default). */
  readonly prefix: string;
  /** `GET` (a HEAD is answered from its GET's response). */
  readonly method: string;
  /** The domain, or `null` when not keyed by domain (or none is known). */
  readonly domain: string | null;
  /** The API Gateway stage, or `null` when not keyed by stage (or there is none). */
  readonly stage: string | null;
  /**
   * What is asked for: the path exactly as the handler receives it (nothing decoded or folded) and the query pairs in their significant order
   * (as received; `'decoded'` marks the pairs of an API Gateway REST event, which the handler gets decoded), or
   * the result of a custom `key` (any JSON value; `"1"` and `1` differ).
   */
  readonly resource:
    | readonly ['url', string, ReadonlyArray<QueryPair>]
    | readonly ['url', string, ReadonlyArray<QueryPair>, 'decoded']
    | readonly ['key', unknown];
  /** Each `vary` header name with the request's value, `null` when absent (not the same as empty). */
  readonly vary: ReadonlyArray<readonly [string, string | null]>;
  /** Every identity source present (empty when anonymous), or `null` on a shared route. */
  readonly identity: readonly IdentityComponent[] | null;
}

/**
 * The memo key of an HTTP request: `<prefix>:http:<sha256 of the JSON array of its components>`. JSON of
 * an array of typed values is an unambiguous encoding (strings are quoted and escaped, lone surrogates
 * included), so no request field can reproduce another request's key by containing separators: distinct
 * component tuples give distinct keys. The prefix stays readable so operators can tell functions apart.
 */
export function httpMemoKey(parts: HttpKeyParts): string {
  const tuple = [KEY_LAYOUT, parts.prefix, parts.method, parts.domain, parts.stage, parts.resource, parts.vary, parts.identity];
  // Only a custom key result can hold objects; without one, plain JSON is the canonical JSON, and cheaper.
  const encoded = parts.resource[0] === 'key' ? canonicalJson(tuple) : JSON.stringify(tuple);
  return `${parts.prefix}:http:${sha256(encoded)}`;
}

/** The memo key of a non-HTTP event by its custom `key` result: `<prefix>:event:<sha256 of [layout, prefix, result]>`. */
export function eventMemoKey(prefix: string, custom: unknown): string {
  return `${prefix}:event:${sha256(canonicalJson([KEY_LAYOUT, prefix, custom]))}`;
}

/** Hex SHA-256, one-shot: cheaper than a Hash object on the hit path. */
function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}
