import { describe, expect, it } from 'vitest';
import type { HttpRequestView } from '../src/middleware/http-event.ts';
import { impliedTags, pathTag, pathTags, routeTag, targetUriTags } from '../src/middleware/route-tags.ts';
import { parseRouteKey, templateShape } from '../src/middleware/route-table.ts';

const request = (more: Partial<HttpRequestView> = {}): HttpRequestView => ({
  source: 'api-gateway-v2',
  method: 'GET',
  path: '/users/42',
  domain: 'api.example.com',
  stage: '$default',
  routeTemplate: '/users/{id}',
  pathParameters: { id: '42' },
  query: [],
  headers: {},
  requestContext: {},
  ...more,
});

// impliedTags remembers recent requests' tags: each field they depend on must still tell requests apart.
describe('the tags a stored response implies', () => {
  it('are its path, its path on its domain and its route template', () => {
    const tags = impliedTags(request(), undefined, true);
    expect(tags).toContain(pathTag('/users/42'));
    expect(tags).toContain(routeTag('/users/{}'));
    expect(tags).toHaveLength(3);
    expect(impliedTags(request(), undefined, false)).toEqual([pathTag('/users/42'), routeTag('/users/{}')]);
  });

  it('differ for requests that differ in any field they depend on, asked in turn and again', () => {
    const variants: Array<[string, HttpRequestView, boolean]> = [
      ['base', request(), true],
      ['path', request({ path: '/users/44' }), true],
      ['parameters', request({ pathParameters: { id: '43' } }), true],
      ['domain', request({ domain: 'other.example.com' }), true],
      ['stage', request({ stage: 'prod', path: '/prod/users/42' }), true],
      ['template', request({ routeTemplate: '/users/{userId}', pathParameters: { userId: '42' } }), true],
      ['not by domain', request(), false],
      ['a field that looks like another', request({ path: '/users/42","x' }), true],
    ];
    // Worked out from the request each time, never remembered: what each variant's tags must be.
    const expected = ([, view, byDomain]: [string, HttpRequestView, boolean]) =>
      new Set([...pathTags(view), ...(byDomain ? targetUriTags(view, true) : []), routeTag(templateShape(view.routeTemplate!))]);
    for (let round = 0; round < 2; round++) {
      for (const variant of round === 0 ? variants : [...variants].reverse()) {
        expect(new Set(impliedTags(variant[1], undefined, variant[2])), variant[0]).toEqual(expected(variant));
      }
    }
    // Only the stage (stripped from an HTTP API path) and the parameter names leave the tags as they are.
    const distinct = new Set(variants.map((variant) => JSON.stringify([...expected(variant)].sort())));
    expect(distinct.size).toBe(variants.length - 2);
  });

  it('add the configured route, and are frozen: a caller cannot change what is remembered', () => {
    const route = parseRouteKey('GET /users/{id}/profile', 'test', 'GET');
    const tags = impliedTags(request(), route, true);
    expect(tags).toContain(routeTag(route.shape));
    expect(() => (tags as string[]).push('mutated')).toThrow(TypeError);
    expect(impliedTags(request(), route, true)).not.toContain('mutated');
  });

  it('follow path parameters changed in place between two requests (the memo holds its own copy)', () => {
    const parameters: Record<string, string> = { id: '42' };
    const view = request({ pathParameters: parameters });
    const before = impliedTags(view, undefined, false);
    parameters.id = '43';
    const after = impliedTags(view, undefined, false);
    expect(after).not.toEqual(before);
    expect(after).toEqual(impliedTags(request({ pathParameters: { id: '43' } }), undefined, false));
  });

  it('follow the path parameters the route template reads, inherited or not enumerable too (a hand-made event)', () => {
    const inherited = (id: string) => request({ path: '/users/inherited', pathParameters: Object.create({ id }) });
    const hidden = (id: string) => request({ path: '/users/hidden', pathParameters: Object.defineProperty({}, 'id', { value: id, enumerable: false }) });
    for (const made of [inherited, hidden]) {
      const a = impliedTags(made('a'), undefined, false);
      const b = impliedTags(made('b'), undefined, false);
      expect(b).not.toEqual(a);
      expect(new Set(b)).toEqual(new Set([...pathTags(made('b')), routeTag('/users/{}')]));
    }
  });

  it('ignore path parameters other than strings, as the route template does (a hand-made event)', () => {
    const circular: Record<string, unknown> = { id: '42' };
    circular.self = circular;
    expect(impliedTags(request({ pathParameters: circular }), undefined, false)).toEqual(impliedTags(request(), undefined, false));
    expect(impliedTags(request({ pathParameters: { id: '42', n: 1n } }), undefined, false)).toEqual(impliedTags(request(), undefined, false));
  });
});
