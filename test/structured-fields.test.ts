// RFC 8941 Dictionaries, parsed strictly: RFC 9213 ignores a targeted field that does not parse, so every
// malformed spelling below must be refused whole, and every valid one read exactly.
import { describe, expect, it } from 'vitest';
import { parseDictionary } from '../src/middleware/structured-fields.ts';

const members = (text: string) => {
  const parsed = parseDictionary(text);
  return parsed === undefined ? undefined : Object.fromEntries(parsed);
};

describe('RFC 8941 Dictionary', () => {
  it('reads members, Boolean true for a bare key, and drops parameters', () => {
    expect(members('max-age=60, no-store, private;x=1, s-maxage=10;a;b="c"')).toEqual({
      'max-age': { kind: 'integer', value: 60 },
      'no-store': { kind: 'boolean', value: true },
      private: { kind: 'boolean', value: true },
      's-maxage': { kind: 'integer', value: 10 },
    });
  });

  it('reads each bare item type', () => {
    expect(members('a=-12, b=1.5, c="x \\"y\\" \\\\", d=tok/en:1, e=:aGk=:, f=?0, g=?1, h=*star')).toEqual({
      a: { kind: 'integer', value: -12 },
      b: { kind: 'decimal', value: 1.5 },
      c: { kind: 'string', value: 'x "y" \\' },
      d: { kind: 'token', value: 'tok/en:1' },
      e: { kind: 'bytes', value: 'aGk=' },
      f: { kind: 'boolean', value: false },
      g: { kind: 'boolean', value: true },
      h: { kind: 'token', value: '*star' },
    });
  });

  it('reads inner lists, and a repeated key keeps its last value', () => {
    expect(members('a=(1 "two" three);p=1, b=()')).toEqual({
      a: { kind: 'inner-list', items: [{ kind: 'integer', value: 1 }, { kind: 'string', value: 'two' }, { kind: 'token', value: 'three' }] },
      b: { kind: 'inner-list', items: [] },
    });
    expect(members('max-age=1, max-age=2')).toEqual({ 'max-age': { kind: 'integer', value: 2 } });
  });

  it('allows spaces around members and tabs after commas, not inside them', () => {
    expect(members('  a=1 ,\tb  ')).toEqual({ a: { kind: 'integer', value: 1 }, b: { kind: 'boolean', value: true } });
    expect(members('')).toEqual({});
  });

  it('takes integers up to 15 digits and decimals up to 12.3', () => {
    expect(members('a=999999999999999')).toEqual({ a: { kind: 'integer', value: 999_999_999_999_999 } });
    expect(members('a=999999999999.999')).toEqual({ a: { kind: 'decimal', value: 999_999_999_999.999 } });
  });

  it.each([
    ['an upper-case key', 'MaX-aGe=60'],
    ['a key starting with a digit', '1a=1'],
    ['a space before =', 'max-age =60'],
    ['a space after =', 'max-age= 60'],
    ['an unknown item type', 'max-age=10000, &&&&&'],
    ['a trailing comma', 'max-age=60,'],
    ['an empty member', 'a=1,,b=2'],
    ['no comma between members', 'a=1 b=2'],
    ['an unterminated string', 'a="x'],
    ['a bad escape in a string', 'a="\\n"'],
    ['a control character in a string', 'a="\t"'],
    ['a non-ASCII character in a string', 'a="é"'],
    ['a 16-digit integer', 'a=9999999999999999'],
    ['a decimal with 13 integer digits', 'a=9999999999999.9'],
    ['a decimal with 4 fraction digits', 'a=1.2345'],
    ['a decimal ending in a point', 'a=1.'],
    ['a lone minus', 'a=-'],
    ['a boolean other than ?0 or ?1', 'a=?2'],
    ['an unterminated byte sequence', 'a=:aGk='],
    ['an unterminated inner list', 'a=(1 2'],
    ['an inner list without spaces', 'a=(1"x")'],
    ['an upper-case parameter key', 'a=1;P=2'],
    ['a non-ASCII key', 'café=1'],
  ])('refuses %s', (_name, text) => {
    expect(parseDictionary(text)).toBeUndefined();
  });
});
