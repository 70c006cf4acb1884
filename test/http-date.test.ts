import { describe, expect, it } from 'vitest';
import { formatHttpDate, parseHttpDate } from '../src/middleware/http-date.ts';

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);
const NOW = Date.UTC(2026, 0, 15);

describe('HTTP-date (RFC 9110 5.6.7)', () => {
  it.each([
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['rfc850-date (obsolete)', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ['asctime-date (obsolete), one-digit day', 'Sun Nov  6 08:49:37 1994'],
    ['surrounding spaces and tabs', ' \tSun, 06 Nov 1994 08:49:37 GMT\t '],
  ])('accepts the %s form', (_name, value) => {
    expect(parseHttpDate(value, NOW)).toBe(NOV_6_1994);
  });

  it('reads an asctime-date as UTC, not local time', () => {
    expect(parseHttpDate('Thu Jan  1 00:00:00 1970', NOW)).toBe(0);
    expect(parseHttpDate('Wed Feb 12 10:11:12 2031', NOW)).toBe(Date.UTC(2031, 1, 12, 10, 11, 12));
  });

  it('places an rfc850 two-digit year within 50 years from now, else in the past century', () => {
    expect(parseHttpDate('Thursday, 01-Jan-70 00:00:00 GMT', NOW)).toBe(Date.UTC(2070, 0, 1));
    expect(parseHttpDate('Monday, 01-Jan-80 00:00:00 GMT', NOW)).toBe(Date.UTC(1980, 0, 1));
    expect(parseHttpDate('Tuesday, 01-Jan-30 00:00:00 GMT', NOW)).toBe(Date.UTC(2030, 0, 1));
  });

  it('keeps four-digit years below 100 as they are', () => {
    expect(new Date(parseHttpDate('Mon, 01 Jan 0050 00:00:00 GMT', NOW)!).getUTCFullYear()).toBe(50);
  });

  it.each([
    ['UTC instead of GMT', 'Sun, 06 Nov 2050 02:01:18 UTC'],
    ['no comma', 'Sun 06 Nov 2050 02:01:18 GMT'],
    ['dashes in an IMF-fixdate', 'Sun, 06-Nov-2050 02:01:18 GMT'],
    ['one-digit hour', 'Sun, 06 Nov 2050 2:01:18 GMT'],
    ['one-digit day', 'Sun, 6 Nov 2050 02:01:18 GMT'],
    ['lower-case GMT (HTTP-date is case-sensitive)', 'Sun, 06 Nov 2050 02:01:18 gmt'],
    ['lower-case month', 'Sun, 06 nov 2050 02:01:18 GMT'],
    ['a numeric zone', 'Sun, 06 Nov 2050 02:01:18 +0000'],
    ['ISO 8601', '2050-11-06T02:01:18Z'],
    ['the value 0', '0'],
    ['an empty value', ''],
    ['a day that does not exist', 'Thu, 31 Feb 2050 02:01:18 GMT'],
    ['hour 24', 'Sun, 06 Nov 2050 24:00:00 GMT'],
    ['minute 60', 'Sun, 06 Nov 2050 02:60:00 GMT'],
    ['a short day name in an rfc850-date', 'Sun, 06-Nov-50 02:01:18 GMT'],
    ['a four-digit year in an rfc850-date', 'Sunday, 06-Nov-2050 02:01:18 GMT'],
    ['asctime with a zone', 'Sun Nov  6 08:49:37 1994 GMT'],
    ['non-ASCII digits', 'Sun, ٠٦ Nov 2050 02:01:18 GMT'],
  ])('rejects %s', (_name, value) => {
    expect(parseHttpDate(value, NOW)).toBeUndefined();
  });

  it('accepts a leap second and the 29th of February of a leap year only', () => {
    expect(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', NOW)).toBe(Date.UTC(2017, 0, 1));
    expect(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT', NOW)).toBe(Date.UTC(2024, 1, 29));
    expect(parseHttpDate('Sun, 29 Feb 2026 00:00:00 GMT', NOW)).toBeUndefined();
  });

  it('formats as IMF-fixdate, which it reads back', () => {
    expect(formatHttpDate(NOV_6_1994)).toBe('Sun, 06 Nov 1994 08:49:37 GMT');
    expect(parseHttpDate(formatHttpDate(NOW), NOW)).toBe(NOW);
  });
});
