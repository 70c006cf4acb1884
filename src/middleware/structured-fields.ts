/**
 * A strict parser of RFC 8941 Structured Field Dictionaries, the syntax of the RFC 9213 targeted cache
 * control fields. Strict because RFC 9213 says a targeted field that does not parse is ignored as a whole:
 * a lenient parser would act on a field every conforming cache ignores.
 */

/** A bare item: Integer and Decimal as numbers (told apart by `kind`), String, Token, Byte Sequence (base64 text), Boolean. */
export type BareItem =
  | { readonly kind: 'integer' | 'decimal'; readonly value: number }
  | { readonly kind: 'string' | 'token' | 'bytes'; readonly value: string }
  | { readonly kind: 'boolean'; readonly value: boolean };

/** A member's value: an Item, or an Inner List (its items). Parameters are parsed and dropped (RFC 9213 ignores them). */
export type MemberValue = BareItem | { readonly kind: 'inner-list'; readonly items: readonly BareItem[] };

const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;
const TOKEN_START = /[A-Za-z*]/;
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;
const BASE64_CHAR = /[A-Za-z0-9+/=]/;
const DIGIT = /[0-9]/;

/** Thrown inside the parser at the first character that breaks the grammar. */
class ParseError extends Error {}

/**
 * The members of an RFC 8941 Dictionary, in order (a repeated key keeps its last value, in the first key's
 * place), or `undefined` when `text` is not a valid Dictionary. Empty text gives an empty map.
 */
export function parseDictionary(text: string): Map<string, MemberValue> | undefined {
  const parser = new Parser(text);
  try {
    return parser.dictionary();
  } catch (error) {
    if (error instanceof ParseError) return undefined;
    throw error;
  }
}

class Parser {
  #text: string;
  #at = 0;

  constructor(text: string) {
    this.#text = text.replace(/^ +| +$/g, '');
  }

  dictionary(): Map<string, MemberValue> {
    const members = new Map<string, MemberValue>();
    while (!this.#done()) {
      const key = this.#key();
      let value: MemberValue;
      if (this.#peek() === '=') {
        this.#at++;
        value = this.#peek() === '(' ? this.#innerList() : this.#item();
      } else {
        value = { kind: 'boolean', value: true };
        this.#parameters();
      }
      members.set(key, value);
      this.#skipOws();
      if (this.#done()) break;
      this.#expect(',');
      this.#skipOws();
      if (this.#done()) throw new ParseError('trailing comma');
    }
    return members;
  }

  #item(): BareItem {
    const item = this.#bareItem();
    this.#parameters();
    return item;
  }

  #innerList(): MemberValue {
    this.#expect('(');
    const items: BareItem[] = [];
    for (;;) {
      this.#skip(' ');
      if (this.#peek() === ')') {
        this.#at++;
        this.#parameters();
        return { kind: 'inner-list', items };
      }
      items.push(this.#item());
      const next = this.#peek();
      if (next !== ' ' && next !== ')') throw new ParseError('inner list');
    }
  }

  #parameters(): void {
    while (this.#peek() === ';') {
      this.#at++;
      this.#skip(' ');
      this.#key();
      if (this.#peek() === '=') {
        this.#at++;
        this.#bareItem();
      }
    }
  }

  #key(): string {
    const start = this.#at;
    if (!KEY_START.test(this.#peek())) throw new ParseError('key');
    while (KEY_CHAR.test(this.#peek())) this.#at++;
    return this.#text.slice(start, this.#at);
  }

  #bareItem(): BareItem {
    const first = this.#peek();
    if (first === '-' || DIGIT.test(first)) return this.#number();
    if (first === '"') return this.#string();
    if (first === ':') return this.#bytes();
    if (first === '?') return this.#boolean();
    if (TOKEN_START.test(first)) return this.#token();
    throw new ParseError('bare item');
  }

  /** RFC 8941 4.2.4: at most 15 integer digits; a decimal has at most 12 before the point and 1 to 3 after. */
  #number(): BareItem {
    const start = this.#at;
    if (this.#peek() === '-') this.#at++;
    const digitsStart = this.#at;
    while (DIGIT.test(this.#peek())) this.#at++;
    const integerDigits = this.#at - digitsStart;
    if (integerDigits === 0) throw new ParseError('number');
    if (this.#peek() !== '.') {
      if (integerDigits > 15) throw new ParseError('integer too long');
      return { kind: 'integer', value: Number(this.#text.slice(start, this.#at)) };
    }
    if (integerDigits > 12) throw new ParseError('decimal too long');
    this.#at++;
    const fractionStart = this.#at;
    while (DIGIT.test(this.#peek())) this.#at++;
    const fractionDigits = this.#at - fractionStart;
    if (fractionDigits < 1 || fractionDigits > 3) throw new ParseError('decimal fraction');
    return { kind: 'decimal', value: Number(this.#text.slice(start, this.#at)) };
  }

  #string(): BareItem {
    this.#expect('"');
    let value = '';
    for (;;) {
      const char = this.#text[this.#at++];
      if (char === undefined) throw new ParseError('unterminated string');
      if (char === '"') return { kind: 'string', value };
      if (char === '\\') {
        const escaped = this.#text[this.#at++];
        if (escaped !== '"' && escaped !== '\\') throw new ParseError('string escape');
        value += escaped;
      } else if (char < ' ' || char > '~') {
        throw new ParseError('string character');
      } else {
        value += char;
      }
    }
  }

  #token(): BareItem {
    const start = this.#at;
    this.#at++;
    while (TOKEN_CHAR.test(this.#peek())) this.#at++;
    return { kind: 'token', value: this.#text.slice(start, this.#at) };
  }

  #bytes(): BareItem {
    this.#expect(':');
    const start = this.#at;
    while (BASE64_CHAR.test(this.#peek())) this.#at++;
    const value = this.#text.slice(start, this.#at);
    this.#expect(':');
    return { kind: 'bytes', value };
  }

  #boolean(): BareItem {
    this.#expect('?');
    const digit = this.#text[this.#at++];
    if (digit !== '0' && digit !== '1') throw new ParseError('boolean');
    return { kind: 'boolean', value: digit === '1' };
  }

  #peek(): string {
    return this.#text[this.#at] ?? '';
  }

  #done(): boolean {
    return this.#at >= this.#text.length;
  }

  #expect(char: string): void {
    if (this.#text[this.#at] !== char) throw new ParseError(`expected ${char}`);
    this.#at++;
  }

  #skip(char: string): void {
    while (this.#text[this.#at] === char) this.#at++;
  }

  /** OWS: spaces and horizontal tabs. */
  #skipOws(): void {
    while (this.#text[this.#at] === ' ' || this.#text[this.#at] === '\t') this.#at++;
  }
}
