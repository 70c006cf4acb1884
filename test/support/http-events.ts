import type { ALBEvent, APIGatewayProxyEvent, APIGatewayProxyEventV2, Context, LambdaFunctionURLEvent } from 'aws-lambda';

/** What varies between the test requests; the rest of each event is the fixed shape AWS sends. */
export interface RequestSpec {
  method?: string;
  /** Path as received, e.g. `/users/42`. */
  path?: string;
  /** Route template, e.g. `/users/{id}`, `/{proxy+}` (REST and HTTP APIs), or `$default` (HTTP API). Default: the path. */
  route?: string;
  /** Query string without `?`, e.g. `b=2&a=1`. */
  query?: string;
  headers?: Record<string, string>;
  /** Who is authenticated, as the integration reports it. */
  principal?: string;
  /** The whole `requestContext.authorizer` (REST and HTTP APIs), in place of the one `principal` gives. */
  authorizer?: Record<string, unknown>;
  /** API Gateway stage. Default `prod` (REST), `$default` (HTTP API). */
  stage?: string;
  /** The domain the request was sent to (a custom domain); also the `Host` header. Default: the execute-api, lambda-url or ELB domain. */
  domain?: string;
  /** ALB multi-value headers and query parameters mode. */
  multiValue?: boolean;
  /** A custom domain's base path mapping (`/v1`): in front of the path the handler sees, not in the path parameters. */
  basePath?: string;
}

/** The path parameters API Gateway extracts for `route` from `path`, or `null` when the route has none. */
function pathParametersOf(route: string, path: string): Record<string, string> | null {
  const templateSegments = route.split('/').slice(1);
  const pathSegments = path.split('/').slice(1);
  const parameters: Record<string, string> = {};
  templateSegments.forEach((segment, i) => {
    const name = /^\{(.+?)(\+?)\}$/.exec(segment);
    if (name) parameters[name[1]!] = name[2] ? pathSegments.slice(i).join('/') : (pathSegments[i] ?? '');
  });
  return Object.keys(parameters).length === 0 ? null : parameters;
}

/** The four HTTP event sources, each building a real-shaped event from a {@link RequestSpec}. */
export const HTTP_SOURCES = {
  'API Gateway REST (v1)': restApiEvent,
  'HTTP API (v2)': httpApiEvent,
  'Function URL': functionUrlEvent,
  ALB: albEvent,
} as const;

export type HttpSource = keyof typeof HTTP_SOURCES;

function queryParameters(query: string | undefined): { single: Record<string, string> | null; multi: Record<string, string[]> | null } {
  if (!query) return { single: null, multi: null };
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [name, value] of new URLSearchParams(query)) {
    single[name] = value;
    (multi[name] ??= []).push(value);
  }
  return { single, multi };
}

/** API Gateway REST API, Lambda proxy integration (payload 1.0), Cognito user pool authorizer when a principal is given. */
export function restApiEvent(spec: RequestSpec = {}): APIGatewayProxyEvent {
  const { method = 'GET', path = '/users/42', route = path, headers = {}, stage = 'prod', domain = 'abc123.execute-api.us-east-1.amazonaws.com' } = spec;
  const { single, multi } = queryParameters(spec.query);
  const allHeaders = { Accept: 'application/json', Host: domain, 'User-Agent': 'curl/8.5.0', ...headers };
  return {
    resource: route,
    path: `${spec.basePath ?? ''}${path}`,
    httpMethod: method,
    headers: allHeaders,
    multiValueHeaders: Object.fromEntries(Object.entries(allHeaders).map(([k, v]) => [k, [v]])),
    queryStringParameters: single,
    multiValueQueryStringParameters: multi,
    pathParameters: pathParametersOf(route, path),
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: domain,
      domainPrefix: domain.split('.')[0],
      authorizer:
        spec.authorizer ??
        (spec.principal ? { claims: { sub: spec.principal, iss: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool', email: `${spec.principal}@example.com` } } : null),
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: '203.0.113.7',
        user: null,
        userAgent: 'curl/8.5.0',
        userArn: null,
      },
      path: `/${stage}${path}`,
      stage,
      requestId: `req-${Math.random()}`,
      requestTimeEpoch: Date.now(),
      resourceId: 'res1',
      resourcePath: route,
    },
    body: method === 'POST' ? '{"name":"new"}' : null,
    isBase64Encoded: false,
  } as APIGatewayProxyEvent;
}

/** HTTP API (payload 2.0) with a JWT authorizer when a principal is given. */
export function httpApiEvent(spec: RequestSpec = {}): APIGatewayProxyEventV2 {
  const { method = 'GET', path = '/users/42', route = path, headers = {}, stage = '$default', domain = 'abc123.execute-api.us-east-1.amazonaws.com' } = spec;
  const { single } = queryParameters(spec.query);
  const routeKey = route === '$default' ? '$default' : `${method} ${route}`;
  const event = {
    version: '2.0',
    routeKey,
    rawPath: `${spec.basePath ?? ''}${path}`,
    rawQueryString: spec.query ?? '',
    headers: Object.fromEntries(Object.entries({ accept: 'application/json', host: domain, ...headers }).map(([k, v]) => [k.toLowerCase(), v])),
    queryStringParameters: single ?? undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: domain,
      domainPrefix: domain.split('.')[0],
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: `req-${Math.random()}`,
      routeKey,
      stage,
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
      ...(spec.authorizer ? { authorizer: spec.authorizer } : spec.principal ? { authorizer: { jwt: { claims: { sub: spec.principal, iss: 'https://issuer.example.com' }, scopes: ['read'] } } } : {}),
    },
    pathParameters: route === '$default' ? undefined : (pathParametersOf(route, path) ?? undefined),
    body: method === 'POST' ? '{"name":"new"}' : undefined,
    isBase64Encoded: false,
  };
  return event as APIGatewayProxyEventV2;
}

/** Lambda Function URL (payload 2.0, route `$default`) with IAM auth when a principal is given. */
export function functionUrlEvent(spec: RequestSpec = {}): LambdaFunctionURLEvent {
  const { method = 'GET', path = '/users/42', headers = {}, domain = 'abcdefgh.lambda-url.us-east-1.on.aws' } = spec;
  const { single } = queryParameters(spec.query);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: spec.query ?? '',
    headers: Object.fromEntries(Object.entries({ accept: 'application/json', host: domain, ...headers }).map(([k, v]) => [k.toLowerCase(), v])),
    queryStringParameters: single ?? undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: domain.split('.')[0],
      domainName: domain,
      domainPrefix: domain.split('.')[0],
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: `req-${Math.random()}`,
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
      ...(spec.principal
        ? { authorizer: { iam: { accessKey: 'AKIA', accountId: '123456789012', callerId: spec.principal, cognitoIdentity: null, principalOrgId: null, userArn: `arn:aws:iam::123456789012:user/${spec.principal}`, userId: spec.principal } } }
        : {}),
    },
    body: method === 'POST' ? '{"name":"new"}' : undefined,
    isBase64Encoded: false,
  } as unknown as LambdaFunctionURLEvent;
}

/**
 * Application Load Balancer target (single-value headers and query parameters, or both multi-value with
 * `multiValue`), with the ALB OIDC identity headers when a principal is given.
 */
export function albEvent(spec: RequestSpec = {}): ALBEvent {
  const { method = 'GET', path = '/users/42', headers = {}, domain = 'lb-123.us-east-1.elb.amazonaws.com' } = spec;
  const { single, multi } = queryParameters(spec.query);
  const encode = encodeURIComponent;
  const allHeaders = {
    accept: 'application/json',
    host: domain,
    'x-forwarded-for': '203.0.113.7',
    ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    ...(spec.principal ? { 'x-amzn-oidc-identity': spec.principal, 'x-amzn-oidc-data': albOidcData('https://idp.example.com', spec.principal) } : {}),
  };
  const base = {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda-tg/50dc6c495c0c9188' } },
    httpMethod: method,
    path,
    body: method === 'POST' ? '{"name":"new"}' : '',
    isBase64Encoded: false,
  };
  if (spec.multiValue) {
    return {
      ...base,
      multiValueQueryStringParameters: multi ? Object.fromEntries(Object.entries(multi).map(([k, vs]) => [encode(k), vs.map(encode)])) : {},
      multiValueHeaders: Object.fromEntries(Object.entries(allHeaders).map(([k, v]) => [k, [v]])),
    };
  }
  return { ...base, queryStringParameters: single ? Object.fromEntries(Object.entries(single).map(([k, v]) => [encode(k), encode(v)])) : {}, headers: allHeaders };
}

/** An ALB `x-amzn-oidc-data` token (header, claims, signature) as an ALB signs it for an identity provider. */
export function albOidcData(issuer: string, subject: string): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = { alg: 'ES256', kid: 'key-1', signer: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/lb/50dc6c495c0c9188', iss: issuer, client: 'alb-client', exp: Math.floor(Date.now() / 1000) + 120 };
  return `${part(header)}.${part({ sub: subject, email: `${subject}@example.com`, exp: header.exp, iss: issuer })}.c2lnbmF0dXJl`;
}

/** A Lambda context object as the runtime passes it, for an invocation that ends `remainingMs` from now. */
export function lambdaContext(functionName = 'users-api', remainingMs = 30_000): Context {
  const endMs = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: `req-${Math.random()}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/11/26/[$LATEST]abc',
    getRemainingTimeInMillis: () => endMs - Date.now(),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
