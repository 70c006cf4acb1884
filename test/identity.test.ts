import { describe, expect, it } from 'vitest';
import { DEFAULT_CREDENTIAL_HEADERS, identityOf } from '../src/middleware/identity.ts';
import { albOidcData } from './support/http-events.ts';

const sourcesOf = (components: ReadonlyArray<readonly [string, string]>) => components.map(([source]) => source);

describe('identity', () => {
  it('anonymous: no component', () => {
    expect(identityOf('api-gateway-v2', {}, {}, DEFAULT_CREDENTIAL_HEADERS)).toEqual([]);
  });

  it('combines every source present, never only the first found', () => {
    const components = identityOf(
      'api-gateway-v1',
      {
        authorizer: { principalId: 'user', tenant: 't1', integrationLatency: 12 },
        identity: { userArn: 'arn:aws:iam::1:user/u', accessKey: 'AKIA1', sourceIp: '203.0.113.7', clientCert: { subjectDN: 'CN=a', issuerDN: 'CN=ca', serialNumber: '1', validity: {} } },
      },
      { authorization: 'Bearer t', cookie: 's=1' },
      DEFAULT_CREDENTIAL_HEADERS,
    );
    expect(sourcesOf(components)).toEqual(['authorizer', 'iam', 'client-certificate', 'credentials']);
    expect(components[0]![1]).toBe('{"principalId":"user","tenant":"t1"}');
    expect(components[1]![1]).not.toContain('sourceIp');
  });

  it('a Lambda authorizer: principalId and its whole context, not the per-call latency', () => {
    const of = (context: Record<string, unknown>) => identityOf('api-gateway-v1', { authorizer: { principalId: 'user', ...context } }, {}, []);
    expect(of({ userId: 'alice', integrationLatency: 1 })).toEqual(of({ userId: 'alice', integrationLatency: 99 }));
    expect(of({ userId: 'alice' })).not.toEqual(of({ userId: 'bob' }));
    const v2 = (lambda: unknown) => identityOf('api-gateway-v2', { authorizer: { lambda } }, {}, []);
    expect(v2({ tenant: 'a', roles: ['x'] })).not.toEqual(v2({ tenant: 'a', roles: ['y'] }));
  });

  it('JWT and Cognito claims: issuer, subject, client, audience and scopes count; token-instance claims do not', () => {
    const jwt = (claims: Record<string, unknown>, scopes: string[] = ['read']) => identityOf('api-gateway-v2', { authorizer: { jwt: { claims, scopes } } }, {}, []);
    const base = { iss: 'https://idp', sub: 'u1', client_id: 'first-party', scope: 'read write' };
    expect(jwt({ ...base, exp: 1, iat: 1, jti: 'a' })).toEqual(jwt({ ...base, exp: 2, iat: 2, jti: 'b' }));
    expect(jwt(base)).not.toEqual(jwt({ ...base, client_id: 'third-party' }));
    expect(jwt(base)).not.toEqual(jwt({ ...base, scope: 'read' }));
    expect(jwt(base)).not.toEqual(jwt({ ...base, iss: 'https://other-idp' }));
    expect(jwt(base)).not.toEqual(jwt(base, ['read', 'admin']));
    const cognito = (claims: Record<string, unknown>) => identityOf('api-gateway-v1', { authorizer: { claims } }, {}, []);
    expect(cognito({ sub: 'u1', aud: 'client-a' })).not.toEqual(cognito({ sub: 'u1', aud: 'client-b' }));
    expect(cognito({ sub: 'u1', 'cognito:groups': 'admin' })).not.toEqual(cognito({ sub: 'u1', 'cognito:groups': 'users' }));
  });

  it('ALB OIDC headers count on ALB events only, with the issuer of the ALB token', () => {
    const headers = { 'x-amzn-oidc-identity': 'alice' };
    expect(identityOf('api-gateway-v2', {}, headers, [])).toEqual([]);
    expect(identityOf('function-url', {}, headers, [])).toEqual([]);
    expect(sourcesOf(identityOf('alb', {}, headers, []))).toEqual(['alb-oidc']);
    const fromIdp = (issuer: string) => identityOf('alb', {}, { ...headers, 'x-amzn-oidc-data': albOidcData(issuer, 'alice') }, []);
    expect(fromIdp('https://idp-a')).not.toEqual(fromIdp('https://idp-b'));
    expect(fromIdp('https://idp-a')).toEqual(fromIdp('https://idp-a'));
  });

  it('credential headers are always part of it when present, with an authorizer identity too', () => {
    const iam = { authorizer: { iam: { userArn: 'arn:aws:iam::1:role/bff' } } };
    const a = identityOf('function-url', iam, { cookie: 'session=a' }, DEFAULT_CREDENTIAL_HEADERS);
    const b = identityOf('function-url', iam, { cookie: 'session=b' }, DEFAULT_CREDENTIAL_HEADERS);
    expect(sourcesOf(a)).toEqual(['iam', 'credentials']);
    expect(a).not.toEqual(b);
    expect(identityOf('function-url', {}, { 'x-custom-token': 't' }, ['x-custom-token'])).toHaveLength(1);
  });
});
