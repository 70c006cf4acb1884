import { formatHttpDate, parseHttpDate } from './http-date.ts';

/**
 * Cache-Control directives by lower-case name (RFC 9111 5.2: names are case-insensitive), with their
 * argument (unquoted) or `true` when they have none. The first occurrence of a repeated directive wins.
 */
export type Directives = ReadonlyMap<string, string | true>;

/** The directives whose argument is delta-seconds (RFC 9111 1.2.2). */
const DELTA_SECONDS_DIRECTIVES = new Set(['max-age', 's-maxage', 'max-stale', 'min-fresh', 'stale-while-revalidate', 'stale-if-error']);

/** Freshness directives: an invalid argument makes the response stale (RFC 9111 4.2.1), not fresh forever. */
const FRESHNESS_DIRECTIVES = new Set(['max-age', 's-maxage']);

/** RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31. */
const DELTA_SECONDS_CAP = 2_147_483_648;

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
/** An RFC 9110 token (5.6.2): a field name, a directive name, an unquoted argument. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^[0-9]+$/;

/**
 * delta-seconds (RFC 9111 1.2.2): one or more ASCII digits, nothing else (no sign, no fraction, no
 * exponent). `undefined` when `value` is not one; values past 2^31 are capped to it.
 */
export function parseDeltaSeconds(value: string): number | undefined {
  if (!DIGITS.test(value)) return undefined;
  const seconds = Number(value);
  return seconds > DELTA_SECONDS_CAP ? DELTA_SECONDS_CAP : seconds;
}

/**
 * Parses a Cache-Control field value: a comma-separated list of `token [ "=" ( token / quoted-string ) ]`,
 * commas inside quoted strings included. Names are lower-cased. Malformed members are kept by name (a
 * misspelt argument must not hide a `no-store`).
 */
export function parseCacheControl(value: string | undefined): Map<string, string | true> {
  const directives = new Map<string, string | true>();
  if (value === undefined || value === '') return directives;
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++;
    const nameStart = i;
    while (i < n && TOKEN_CHAR.test(value[i]!)) i++;
    const name = value.slice(nameStart, i).toLowerCase();
    let argument: string | true = true;
    if (value[i] === '=') {
      i++;
      if (value[i] === '"') {
        let text = '';
        i++;
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++;
          text += value[i];
          i++;
        }
        i++;
        argument = text;
      } else {
        const argStart = i;
        while (i < n && value[i] !== ',') i++;
        argument = value.slice(argStart, i).replace(/[ \t]+$/, '');
      }
    }
    // Skip whatever is left of a malformed member up to the next comma.
    while (i < n && value[i] !== ',') {
      if (value[i] === '"') i = closingQuote(value, i + 1);
      i++;
    }
    if (name !== '' && !directives.has(name)) directives.set(name, argument);
  }
  return directives;
}

/** The index of the quote that closes a quoted string whose content starts at `i` (or the end). */
function closingQuote(value: string, i: number): number {
  while (i < value.length && value[i] !== '"') i += value[i] === '\\' ? 2 : 1;
  return i;
}

/**
 * Directives written back in a canonical form that a lenient parser (`http-cache-semantics` splits on
 * every comma and compares names case-sensitively) reads exactly as RFC 9111 means them: lower-case names,
 * delta-seconds checked (an invalid `max-age`/`s-maxage` becomes `0`: stale; other invalid ones are
 * dropped), and arguments that are not plain tokens dropped, so `no-cache="a, b"` stays `no-cache`.
 */
export function formatCacheControl(directives: Directives): string {
  const members: string[] = [];
  for (const [name, argument] of directives) {
    if (DELTA_SECONDS_DIRECTIVES.has(name)) {
      const seconds = argument === true ? undefined : parseDeltaSeconds(argument);
      if (seconds !== undefined) members.push(`${name}=${seconds}`);
      else if (FRESHNESS_DIRECTIVES.has(name)) members.push(`${name}=0`);
    } else if (argument === true || !TOKEN.test(argument)) {
      members.push(name);
    } else {
      members.push(`${name}=${argument}`);
    }
  }
  return members.join(', ');
}

/**
 * The past instant an invalid `Expires` stands for (RFC 9111 5.3: "already expired"): `formatHttpDate(0)`,
 * written out because the first `Date#toUTCString()` of a process costs about 0.3 ms, which every cold start
 * that imports the package would pay.
 */
const ALREADY_EXPIRED = 'Thu, 01 Jan 1970 00:00:00 GMT';

/**
 * Response or request header fields (lower-case names) rewritten so that a lenient cache library applies
 * RFC 9110/9111 to the letter: Cache-Control and Pragma canonical, `Expires` and `Date` as IMF-fixdate
 * (an invalid `Expires` is already expired; an invalid `Date` is dropped, so the receipt time is used),
 * `Age` as delta-seconds (its first member; dropped when invalid, as RFC 9111 5.1 says).
 */
export function strictCachingFields(headers: Readonly<Record<string, string>>, nowMs = Date.now()): Record<string, string> {
  const result: Record<string, string> = { ...headers };
  if (headers['cache-control'] !== undefined) result['cache-control'] = formatCacheControl(parseCacheControl(headers['cache-control']));
  if (headers.pragma !== undefined) result.pragma = headers.pragma.toLowerCase();
  if (headers.expires !== undefined) {
    const expires = parseHttpDate(headers.expires, nowMs);
    result.expires = expires === undefined ? ALREADY_EXPIRED : formatHttpDate(expires);
  }
  if (headers.date !== undefined) {
    const date = parseHttpDate(headers.date, nowMs);
    if (date === undefined) delete result.date;
    else result.date = formatHttpDate(date);
  }
  if (headers.age !== undefined) {
    const age = ageOf(headers.age);
    if (age === undefined) delete result.age;
    else result.age = String(age);
  }
  return result;
}

/** The `Age` field's value in seconds (its first member, RFC 9111 5.1), or `undefined` when invalid. */
export function ageOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return parseDeltaSeconds(value.split(',')[0]!.replace(/^[ \t]+|[ \t]+$/g, ''));
}
