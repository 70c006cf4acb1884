import { describe, expect, it } from 'vitest';
import { ageOf, formatCacheControl, parseCacheControl, parseDeltaSeconds, strictCachingFields } from '../src/middleware/cache-control.ts';

describe('Cache-Control directives (RFC 9111 5.2)', () => {
  it('compares directive names case-insensitively', () => {
    const directives = parseCacheControl('Private, MAX-AGE=60, No-Store, NO-CACHE');
    expect([...directives.keys()]).toEqual(['private', 'max-age', 'no-store', 'no-cache']);
    expect(directives.get('max-age')).toBe('60');
  });

  it('accepts quoted arguments, with commas and escapes inside', () => {
    const directives = parseCacheControl('no-cache="Set-Cookie, X-Foo", max-age="30", private="a\\"b"');
    expect(directives.get('no-cache')).toBe('Set-Cookie, X-Foo');
    expect(directives.get('max-age')).toBe('30');
    expect(directives.get('private')).toBe('a"b');
    expect(directives.has('x-foo"')).toBe(false);
  });

  it('keeps the first of repeated directives and a misspelt one by name', () => {
    expect(parseCacheControl('max-age=10, max-age=0').get('max-age')).toBe('10');
    expect(parseCacheControl('no-store garbage, public').has('no-store')).toBe(true);
    expect(parseCacheControl(', ,  public ,').has('public')).toBe(true);
  });

  it('writes a canonical form a lenient parser reads right', () => {
    expect(formatCacheControl(parseCacheControl('Public, S-MAXAGE="120", no-cache="a, b"'))).toBe('public, s-maxage=120, no-cache');
    expect(formatCacheControl(parseCacheControl('max-age=60.5, stale-while-revalidate=1e3'))).toBe('max-age=0');
    expect(formatCacheControl(parseCacheControl('max-age=-1, s-maxage'))).toBe('max-age=0, s-maxage=0');
    expect(formatCacheControl(parseCacheControl('max-age=99999999999'))).toBe('max-age=2147483648');
  });

  it('reads delta-seconds as digits only', () => {
    expect(parseDeltaSeconds('7200')).toBe(7200);
    for (const invalid of ['7200.0', '-1', '+5', '1e3', ' 5', '', '0x10', '٥']) expect(parseDeltaSeconds(invalid)).toBeUndefined();
  });

  it('Age: the first member, ignored when invalid (RFC 9111 5.1)', () => {
    expect(ageOf('30')).toBe(30);
    expect(ageOf('30, 40')).toBe(30);
    expect(ageOf('7200.0')).toBeUndefined();
    expect(ageOf(undefined)).toBeUndefined();
  });

  it('strict caching fields: invalid Expires already expired, invalid Date and Age dropped, obsolete dates rewritten', () => {
    const fields = strictCachingFields(
      { 'cache-control': 'Max-Age=60', expires: 'Sun, 06 Nov 2050 02:01:18 UTC', date: 'yesterday', age: '7200.0', pragma: 'No-Cache', etag: '"x"' },
      Date.UTC(2026, 0, 1),
    );
    expect(fields).toEqual({ 'cache-control': 'max-age=60', expires: 'Thu, 01 Jan 1970 00:00:00 GMT', pragma: 'no-cache', etag: '"x"' });
    expect(strictCachingFields({ expires: 'Sun Nov  6 08:49:37 2050', age: '5, 6' }).expires).toBe('Sun, 06 Nov 2050 08:49:37 GMT');
    expect(strictCachingFields({ age: '5, 6' }).age).toBe('5');
  });
});
