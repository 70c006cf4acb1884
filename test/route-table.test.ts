import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../src/errors.ts';
import type { HttpRequestView } from '../src/middleware/http-event.ts';
import { RouteTable } from '../src/middleware/route-table.ts';

const request = (method: string, path: string, more: Partial<HttpRequestView> = {}): HttpRequestView => ({
  source: 'function-url',
  method,
  path,
  domain: undefined,
  stage: undefined,
  routeTemplate: undefined,
  pathParameters: undefined,
  query: [],
  headers: {},
  requestContext: {},
  ...more,
});

describe('route table', () => {
  const table = new RouteTable<string>([
    ['GET /users/{id}', 'user'],
    ['GET /users/me', 'me'],
    ['ANY /files/{path+}', 'files'],
    ['GET /x', false],
    ['GET /Admin/{proxy+}', false],
    ['HEAD /users/{id}', 'head-user'],
  ]);

  it('matches literal, {param} and {proxy+} patterns, the most specific first', () => {
    expect(table.match(request('GET', '/users/42'))).toBe('user');
    expect(table.match(request('GET', '/users/me'))).toBe('me');
    expect(table.match(request('PUT', '/files/a/b/c'))).toBe('files');
    expect(table.match(request('GET', '/files'))).toBeUndefined();
    expect(table.match(request('GET', '/users/42/extra'))).toBeUndefined();
    expect(table.match(request('POST', '/users/42'))).toBeUndefined();
  });

  it('a HEAD follows its GET route, unless it has a route of its own', () => {
    expect(table.match(request('HEAD', '/users/me'))).toBe('me');
    expect(table.match(request('HEAD', '/users/7'))).toBe('head-user');
  });

  it('a disabled route matches every spelling and every case of its path', () => {
    for (const spelling of ['/x', '/x/', '//x', '/X', '/%78', '/%58/', '/./x', '/y/../x']) expect(table.match(request('GET', spelling))).toBe(false);
    expect(table.match(request('HEAD', '/X/'))).toBe(false);
    expect(table.match(request('GET', '/admin/anything'))).toBe(false);
    expect(table.match(request('GET', '/ADMIN/a/b'))).toBe(false);
  });

  it('a route kept per user matches any spelling; a shared route only the path as received or rebuilt from its template', () => {
    expect(table.match(request('GET', '/USERS/42'))).toBe('user');
    expect(table.match(request('GET', '//users//42/'))).toBe('user');
    const shared = new RouteTable<{ shared: boolean }>([['GET /catalog/{proxy+}', { shared: true }]], (policy) => policy.shared);
    expect(shared.match(request('GET', '/catalog/shoes'))).toEqual({ shared: true });
    for (const path of ['/CATALOG/shoes', '/%63atalog/shoes', '/me/x/../../catalog/shoes', '/me/x%2F..%2F..%2Fcatalog/shoes', '//catalog/shoes']) {
      expect(shared.match(request('GET', path)), path).toBeUndefined();
    }
    const behindProxy = { source: 'api-gateway-v1' as const, routeTemplate: '/{proxy+}' };
    expect(shared.match(request('GET', '/base/catalog/shoes', { ...behindProxy, pathParameters: { proxy: 'catalog/shoes' } }))).toEqual({ shared: true });
    expect(shared.match(request('GET', '/base/me/x/../../catalog/shoes', { ...behindProxy, pathParameters: { proxy: 'me/x/../../catalog/shoes' } }))).toBeUndefined();
    // A named stage leads an HTTP API's rawPath, never a REST path: there `/prod/...` is a path of its own.
    expect(shared.match(request('GET', '/prod/catalog/shoes', { source: 'api-gateway-v2', stage: 'prod' }))).toEqual({ shared: true });
    expect(shared.match(request('GET', '/prod/catalog/shoes', { source: 'api-gateway-v1', stage: 'prod' }))).toBeUndefined();
  });

  it('behind API Gateway: the route template, the stage prefix and the rebuilt path all count', () => {
    const behindProxy = { source: 'api-gateway-v2' as const, routeTemplate: '/{proxy+}' };
    expect(table.match(request('GET', '/prod/x', { ...behindProxy, stage: 'prod' }))).toBe(false);
    expect(table.match(request('GET', '/v1/x', { ...behindProxy, pathParameters: { proxy: 'x' } }))).toBe(false);
    expect(table.match(request('GET', '/base/users/7', { source: 'api-gateway-v1', routeTemplate: '/users/{id}', pathParameters: { id: '7' } }))).toBe('user');
    expect(table.match(request('GET', '/anything', { source: 'api-gateway-v1', routeTemplate: '/users/{userId}' }))).toBe('user');
    expect(table.match(request('GET', '/anything', { source: 'api-gateway-v1', routeTemplate: '/x' }))).toBe(false);
  });

  it('a disabled route wins over a more specific enabled one', () => {
    const t = new RouteTable<string>([
      ['GET /admin/public', 'public'],
      ['GET /admin/{proxy+}', false],
    ]);
    expect(t.match(request('GET', '/admin/public'))).toBe(false);
  });

  it('refuses a malformed route key', () => {
    expect(() => new RouteTable([['/users', 'x']])).toThrow(InvalidOptionsError);
    expect(() => new RouteTable([['GET users', 'x']])).toThrow(/METHOD \/path/);
    expect(() => new RouteTable([['GET /{proxy+}/x', 'x']])).toThrow(/last segment/);
  });
});
