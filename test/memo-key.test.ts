import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { IdentityComponent, IdentitySource } from '../src/middleware/identity.ts';
import { canonicalJson } from '../src/middleware/canonical-json.ts';
import { eventMemoKey, httpMemoKey, type HttpKeyParts } from '../src/middleware/memo-key.ts';

// A small alphabet full of separators, so that two generated tuples often differ only in where a
// separator sits (the shape of every injection: `/me|principal:x` against `/me` plus a principal).
const text = fc.string({ unit: fc.constantFrom('a', 'é', '/', '|', ':', '"', '\\', ',', '[', ']', '=', '&', '?', ' ', '\ud800', '\u0000'), maxLength: 4 });
const nullable = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: null });
const sources: IdentitySource[] = ['jwt', 'claims', 'authorizer', 'lambda-authorizer', 'iam', 'client-certificate', 'alb-oidc', 'credentials'];
const identity: fc.Arbitrary<IdentityComponent[]> = fc.array(fc.tuple(fc.constantFrom(...sources), text), { maxLength: 2 });
const resource: fc.Arbitrary<HttpKeyParts['resource']> = fc.oneof(
  fc.tuple(fc.constant('url' as const), text, fc.array(fc.tuple(text, text), { maxLength: 2 })),
  fc.tuple(fc.constant('key' as const), fc.oneof(text, fc.integer({ min: 0, max: 3 }), fc.jsonValue({ maxDepth: 2 }))),
);
const parts: fc.Arbitrary<HttpKeyParts> = fc.record({
  prefix: fc.constantFrom('fn', 'fn:http', ''),
  method: fc.constantFrom('GET', 'GET '),
  domain: nullable(text),
  stage: nullable(text),
  resource,
  vary: fc.array(fc.tuple(text, nullable(text)), { maxLength: 2 }),
  identity: nullable(identity),
});

/** `value` with every string replaced by `f(string)`, in a fixed traversal order (object keys as listed). */
function mapStrings(value: unknown, f: (leaf: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, f));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f)]));
  return value;
}

/** Equality of two key tuples by value, independent of how keys encode them (JSON values: round-tripped first). */
const sameParts = (a: HttpKeyParts, b: HttpKeyParts) => isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));

describe('memo keys', () => {
  it('property: two component tuples give the same key exactly when they are equal', () => {
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        expect(httpMemoKey(a) === httpMemoKey(b)).toBe(sameParts(a, b));
      }),
      { numRuns: 5_000 },
    );
  });

  it('property: null, empty and absent components are told apart', () => {
    fc.assert(
      fc.property(parts, (a) => {
        const variants: HttpKeyParts[] = [
          a,
          { ...a, domain: a.domain === null ? '' : null },
          { ...a, stage: a.stage === null ? '' : null },
          { ...a, identity: a.identity === null ? [] : null },
          { ...a, vary: [...a.vary, ['x', null]] },
          { ...a, vary: [...a.vary, ['x', '']] },
        ];
        expect(new Set(variants.map(httpMemoKey)).size).toBe(variants.length);
      }),
      { numRuns: 2_000 },
    );
  });

  it('property: shifting the boundaries between string components (same characters, split differently) always changes the key', () => {
    fc.assert(
      fc.property(parts, fc.array(fc.nat(), { minLength: 40, maxLength: 40 }), (a, cuts) => {
        const leaves: string[] = [];
        mapStrings(a, (leaf) => (leaves.push(leaf), leaf));
        const all = leaves.join('');
        // Re-split the same characters into as many pieces, at other places.
        const positions = leaves.map((_, i) => (i === leaves.length - 1 ? all.length : cuts[i]! % (all.length + 1))).sort((x, y) => x - y);
        let from = 0;
        const pieces = positions.map((to) => all.slice(from, (from = Math.max(from, to))));
        let next = 0;
        const b = mapStrings(a, () => pieces[next++]!) as HttpKeyParts;
        expect(httpMemoKey(a) === httpMemoKey(b)).toBe(sameParts(a, b));
      }),
      { numRuns: 20_000 },
    );
  });

  it('the crafted path of an anonymous request never reaches a signed-in user’s key', () => {
    const victim: HttpKeyParts = { prefix: 'fn', method: 'GET', domain: 'api.example.com', stage: '$default', resource: ['url', '/me', []], vary: [], identity: [['jwt', '{"sub":"alice"}']] };
    const attacker: HttpKeyParts = { ...victim, resource: ['url', `/me|principal:${'0'.repeat(64)}`, []], identity: [] };
    expect(httpMemoKey(attacker)).not.toBe(httpMemoKey(victim));
  });

  it('keeps the prefix readable, hashes everything else', () => {
    const key = httpMemoKey({ prefix: 'orders-api', method: 'GET', domain: null, stage: null, resource: ['url', '/secret/path', [['token', 'abc']]], vary: [], identity: [] });
    expect(key).toMatch(/^orders-api:http:[0-9a-f]{64}$/);
  });

  it('a shared route, an anonymous caller and absent vs empty headers are all told apart', () => {
    const base: HttpKeyParts = { prefix: 'fn', method: 'GET', domain: null, stage: null, resource: ['url', '/x', []], vary: [['accept-language', null]], identity: [] };
    const keys = new Set([httpMemoKey(base), httpMemoKey({ ...base, identity: null }), httpMemoKey({ ...base, vary: [['accept-language', '']] }), httpMemoKey({ ...base, vary: [] })]);
    expect(keys.size).toBe(4);
  });

  it('custom key results are typed, and object key order does not matter', () => {
    expect(eventMemoKey('fn', '1')).not.toBe(eventMemoKey('fn', 1));
    expect(eventMemoKey('fn', '[1]')).not.toBe(eventMemoKey('fn', [1]));
    expect(eventMemoKey('fn', { a: 1, b: { c: 2, d: 3 } })).toBe(eventMemoKey('fn', { b: { d: 3, c: 2 }, a: 1 }));
    const custom = (value: unknown): HttpKeyParts => ({ prefix: 'fn', method: 'GET', domain: null, stage: null, resource: ['key', value], vary: [], identity: [] });
    expect(httpMemoKey(custom({ a: 1, b: 2 }))).toBe(httpMemoKey(custom({ b: 2, a: 1 })));
    expect(httpMemoKey(custom('x'))).not.toBe(httpMemoKey({ ...custom('x'), resource: ['url', 'x', []] }));
  });

  it('canonical JSON sorts object keys at every depth and leaves arrays in order', () => {
    expect(canonicalJson({ b: [2, { z: 1, y: 0 }], a: null })).toBe('{"a":null,"b":[2,{"y":0,"z":1}]}');
  });
});
