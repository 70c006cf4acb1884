/**
 * HTTP-date, exactly as RFC 9110 section 5.6.7 defines it: the preferred IMF-fixdate and the two obsolete
 * forms a recipient must still accept (rfc850-date and asctime-date). `Date.parse` is not used: it accepts
 * far more (`UTC` for `GMT`, no comma, one-digit hours, local time zones), and RFC 9111 section 5.3 needs
 * an invalid date to be recognised so it can be read as "already expired".
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const MONTH = `(${MONTHS.join('|')})`;
const DAY_NAME = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_NAME_LONG = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const TIME_OF_DAY = '([0-9]{2}):([0-9]{2}):([0-9]{2})';

// HTTP-date is case-sensitive (RFC 9110 5.6.7), so none of these carries the `i` flag.
const IMF_FIXDATE = new RegExp(`^${DAY_NAME}, ([0-9]{2}) ${MONTH} ([0-9]{4}) ${TIME_OF_DAY} GMT$`);
const RFC850_DATE = new RegExp(`^${DAY_NAME_LONG}, ([0-9]{2})-${MONTH}-([0-9]{2}) ${TIME_OF_DAY} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY_NAME} ${MONTH} ((?: [0-9])|[0-9]{2}) ${TIME_OF_DAY} ([0-9]{4})$`);

/** Optional whitespace around a field value is not part of it (RFC 9110 5.5). */
const OWS = /^[ \t]+|[ \t]+$/g;

/**
 * The instant an HTTP-date names, in epoch milliseconds, or `undefined` when `value` is not an HTTP-date
 * (any other spelling, or a date that does not exist such as 31 Feb).
 *
 * @param value - A field value (`Expires`, `Date`...), surrounding spaces and tabs allowed.
 * @param nowMs - Now, to place an rfc850-date's two-digit year (RFC 9110: more than 50 years ahead means the past century).
 */
export function parseHttpDate(value: string, nowMs = Date.now()): number | undefined {
  const text = value.replace(OWS, '');
  let match = IMF_FIXDATE.exec(text);
  if (match !== null) return instant(Number(match[3]), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = RFC850_DATE.exec(text);
  if (match !== null) return instant(centuryOf(Number(match[3]), nowMs), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = ASCTIME_DATE.exec(text);
  if (match !== null) return instant(Number(match[6]), match[1]!, match[2]!.trim(), match[3]!, match[4]!, match[5]!);
  return undefined;
}

/** `ms` as an IMF-fixdate, the form every other HTTP component parses reliably. */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** A two-digit year as RFC 9110 says: the nearest such year, unless that is more than 50 years ahead. */
function centuryOf(twoDigits: number, nowMs: number): number {
  const thisYear = new Date(nowMs).getUTCFullYear();
  const year = Math.floor(thisYear / 100) * 100 + twoDigits;
  return year > thisYear + 50 ? year - 100 : year;
}

function instant(year: number, monthName: string, dayText: string, hourText: string, minuteText: string, secondText: string): number | undefined {
  const month = MONTHS.indexOf(monthName as (typeof MONTHS)[number]);
  const day = Number(dayText);
  const hour = Number(hourText);
  const minute = Number(minuteText);
  const second = Number(secondText);
  // 60 is a leap second (the grammar allows it); the instant is then the next minute's first second.
  if (hour > 23 || minute > 59 || second > 60 || day < 1 || day > daysIn(year, month)) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

function daysIn(year: number, month: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month + 1, 0);
  return date.getUTCDate();
}
