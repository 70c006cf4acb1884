import { formatCacheControl } from './cache-control.ts';
import { parseDictionary, type MemberValue } from './structured-fields.ts';

/**
 * The field targeted at this cache alone (RFC 9213 2.4 naming convention): its directives apply to the
 * middleware's stored responses only, and no other cache reads it.
 */
export const OWN_TARGETED_FIELD = 'DynamoCache-Control';

/** The default target list (RFC 9213 2.1), most specific first: this cache's own field, then the CDN one. */
export const DEFAULT_TARGETED_FIELDS: readonly string[] = [OWN_TARGETED_FIELD, 'CDN-Cache-Control'];

/**
 * Default of the fields removed from the response sent on: the one no cache downstream reads (RFC 9213 3
 * lets a cache remove a targeted field "known not to be used downstream"). CDN-Cache-Control is forwarded,
 * as the RFC expects, so that a CDN in front (CloudFront) can use it.
 */
export const DEFAULT_REMOVED_TARGETED_FIELDS: readonly string[] = [OWN_TARGETED_FIELD];

/** The directives whose value is delta-seconds: an RFC 8941 Integer there, anything else is no value. */
const DELTA_SECONDS_DIRECTIVES = new Set(['max-age', 's-maxage', 'max-stale', 'min-fresh', 'stale-while-revalidate', 'stale-if-error']);

/**
 * The response's caching fields as this cache must read them (RFC 9213 2.1): when a field of `targetList`
 * (lower-case names, most specific first) is present, valid and non-empty, the first such field's
 * directives replace `Cache-Control` as a whole, and `Expires` is ignored; otherwise `headers` as they are.
 * `headers` has lower-case names.
 */
export function targetedCachingFields(headers: Readonly<Record<string, string>>, targetList: readonly string[]): Readonly<Record<string, string>> {
  for (const name of targetList) {
    const value = headers[name];
    if (value === undefined) continue;
    const members = parseDictionary(value);
    // RFC 9213 2.2: an empty field, or one that does not parse, is ignored (as if absent).
    if (members === undefined || members.size === 0) continue;
    const { expires: _ignored, ...rest } = headers;
    return { ...rest, 'cache-control': formatCacheControl(directivesOf(members)) };
  }
  return headers;
}

/**
 * Structured members as cache directives (RFC 9213 2.2). A delta-seconds directive takes an Integer only: a
 * String, Token or Decimal there is no value (`max-age="60"` is stale, as an invalid `max-age` is). Other
 * directives keep a Token or String argument; Boolean members (no value) and the rest take none, so
 * `no-store=?0` still forbids storing: a misspelt value never loosens a restriction.
 */
function directivesOf(members: ReadonlyMap<string, MemberValue>): Map<string, string | true> {
  const directives = new Map<string, string | true>();
  for (const [name, member] of members) {
    if (DELTA_SECONDS_DIRECTIVES.has(name)) directives.set(name, member.kind === 'integer' ? String(member.value) : true);
    else directives.set(name, member.kind === 'token' || member.kind === 'string' ? member.value : true);
  }
  return directives;
}
