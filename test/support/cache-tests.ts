// The HTTP Working Group's cache test suite (test/vendor/cache-tests) run against the middleware as a reverse
// proxy cache: an HTTP server on loopback turns each request into an API Gateway HTTP API (v2) event, runs it
// through `middy(forward).use(dynamoCache(...))`, whose handler forwards the event to the suite's origin server,
// and turns the handler's (or the cache's) result back into an HTTP response, as API Gateway does.
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dynamoCache, type DynamoCacheMiddlewareOptions } from '../../src/middleware/dynamo-cache-middleware.ts';
import { lambdaContext } from './http-events.ts';
import { RecordingLogger } from './recording-logger.ts';

/** One test's outcome as the suite records it: `true`, or `[error name, message]`. */
export type TestOutcome = true | [string, string];

/** A cache's score on the suite's required tests. */
export interface RequiredScore {
  readonly name: string;
  /** Required tests passed, as the suite's result files record them (the count cache-tests.fyi's summaries use). */
  readonly passed: number;
  /** The same with the results page's dependency rule: a test whose `depends_on` tests did not pass shows as not run. */
  readonly passedWithDependencies: number;
  readonly required: number;
}

/** What one run of the suite gives. */
export interface CacheTestsRun {
  /** Every test run, by id. */
  readonly results: Readonly<Record<string, TestOutcome>>;
  /** The ids of the required tests. */
  readonly requiredIds: readonly string[];
  /** This run's score on them. */
  readonly score: RequiredScore;
  /** The published reverse proxies' and CDN's scores, from the suite's results/ (best first). */
  readonly published: readonly RequiredScore[];
  readonly seconds: number;
}

/** What a run is made of. */
export interface CacheTestsOptions {
  /**
   * The middleware's options: the table (`tableName`, `clientConfig`) and `response`, whose defaults here are
   * the suite's setting: a reverse proxy cache, `{ shared: true }`. A 5 s `timeoutMs` unless given.
   */
  readonly middleware: DynamoCacheMiddlewareOptions;
  /** Runs only these tests, logging their requests and responses (the suite's `dump`): to look into one. */
  readonly only?: readonly string[];
}

/**
 * The required tests the middleware fails by design, each with why: every one failed at b24f27a too. A
 * run that fails any other required test has regressed.
 */
export const REQUIRED_FAILURES: Readonly<Record<string, string>> = {
  'stale-while-revalidate-window': 'wants the stale response served while it is revalidated in the background: Lambda freezes an environment once it answers, so the one refreshing answers after',
  'conditional-etag-vary-headers': 'wants a response stored that varies on a request field outside the key (`Vary: Abc`): the key is made before the response is known (list the field in `vary`)',
  'headers-store-Set-Cookie': 'wants a response with Set-Cookie stored: never stored, so that no caller gets another one’s cookie',
  'partial-use-headers': 'wants a 206 for a Range request built from the stored complete response: ranges are not served from the cache',
  'partial-use-stored-headers': 'the same 206 from the stored response',
  'interim-not-cached': 'wants a 103 Early Hints passed on: Lambda integrations carry no 1xx response (the suite reads them with undici, not installed)',
};

/** A test as the suite defines it (the fields the run reads). */
interface SuiteTest {
  readonly id: string;
  readonly kind?: string;
  readonly browser_only?: boolean;
  readonly depends_on?: readonly string[];
  dump?: boolean;
}

interface Suite {
  readonly tests: readonly SuiteTest[];
}

/** The parts of the vendored suite the run uses (plain JavaScript modules, loaded by URL). */
interface SuiteModules {
  readonly suites: Suite[];
  readonly setBaseUrl: (url: string) => void;
  readonly makeTest: (test: SuiteTest) => Promise<void>;
  readonly testResults: Record<string, TestOutcome>;
  readonly determineTestResult: (suites: Suite[], id: string, results: Record<string, TestOutcome>) => unknown;
  readonly pass: unknown;
  readonly handlers: Record<'config' | 'test' | 'state', (segments: string[], request: IncomingMessage, response: ServerResponse) => void>;
  readonly publishedIndex: Array<{ file: string; name: string; type: string; version: string }>;
}

const VENDOR = new URL('../vendor/cache-tests/', import.meta.url);

/**
 * Tests run at once. Each spends most of its time in the suite's 3 s pauses, so this many keep the run near
 * ten seconds while a loaded machine still answers each request well within the suite's 10 s timeout (all
 * 189 at once took seconds per request there).
 */
const CONCURRENT_TESTS = 48;

async function loadSuite(): Promise<SuiteModules> {
  const load = (path: string) => import(new URL(path, VENDOR).href);
  const [tests, config, client, results, configHandler, testHandler, stateHandler, index] = await Promise.all([
    load('tests/index.mjs'),
    load('test-engine/client/config.mjs'),
    load('test-engine/client/test.mjs'),
    load('test-engine/lib/results.mjs'),
    load('test-engine/server/handle-config.mjs'),
    load('test-engine/server/handle-test.mjs'),
    load('test-engine/server/handle-state.mjs'),
    load('results/index.mjs'),
  ]);
  return {
    suites: tests.default,
    setBaseUrl: config.setBaseUrl,
    makeTest: client.makeTest,
    testResults: client.testResults,
    determineTestResult: results.determineTestResult,
    pass: results.resultTypes.pass,
    handlers: { config: configHandler.default, test: testHandler.default, state: stateHandler.default },
    publishedIndex: index.default,
  };
}

/**
 * Runs the suite's required tests and those they depend on (189 of its 365: what the required score and the
 * results page's dependency rule read), through the suite's own client (`makeTest`, as its runner calls it
 * for a proxy cache), `CONCURRENT_TESTS` at a time, against a fresh `dynamoCache`, and scores the run beside
 * the published results.
 */
export async function runCacheTests(options: CacheTestsOptions): Promise<CacheTestsRun> {
  const started = performance.now();
  const suite = await loadSuite();
  const origin = await listen(createServer((request, response) => originRequest(suite, request, response)));
  // Generous timeouts, so that a loaded machine does not turn hits into misses.
  const middleware: DynamoCacheMiddlewareOptions = { logger: new RecordingLogger(), timeoutMs: 5000, ...options.middleware, response: { shared: true, ...options.middleware.response } };
  const handler = middy(forwardTo(origin.url)).use(dynamoCache(middleware)) as unknown as (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>;
  const cache = await listen(createServer((request, response) => void proxyRequest(handler, request, response)));
  const all = suite.suites.flatMap((s) => s.tests).filter((test) => test.browser_only !== true);
  const requiredIds = all.filter((test) => test.kind === undefined || test.kind === 'required').map((test) => test.id);
  const only = options.only;
  const toRun = only === undefined ? withDependencies(all, requiredIds) : all.filter((test) => only.includes(test.id)).map((test) => ({ ...test, dump: true }));
  try {
    for (const id of Object.keys(suite.testResults)) delete suite.testResults[id];
    suite.setBaseUrl(cache.url);
    const queue = [...toRun];
    const worker = async () => {
      for (let test = queue.shift(); test !== undefined; test = queue.shift()) await suite.makeTest(test);
    };
    await Promise.all(Array.from({ length: CONCURRENT_TESTS }, worker));
  } finally {
    await Promise.all([cache.close(), origin.close()]);
  }
  const results = { ...suite.testResults };
  const scoreOf = (name: string, outcomes: Record<string, TestOutcome>): RequiredScore => ({
    name,
    passed: requiredIds.filter((id) => outcomes[id] === true).length,
    passedWithDependencies: requiredIds.filter((id) => suite.determineTestResult(suite.suites, id, outcomes) === suite.pass).length,
    required: requiredIds.length,
  });
  const published: RequiredScore[] = [];
  for (const entry of suite.publishedIndex.filter((e) => e.type !== 'browser')) {
    const outcomes = (await import(new URL(`results/${entry.file}`, VENDOR).href, { with: { type: 'json' } })).default;
    published.push(scoreOf(`${entry.name} ${entry.version}`, outcomes));
  }
  published.sort((a, b) => b.passed - a.passed);
  return { results, requiredIds, score: scoreOf('dynamo-cache', results), published, seconds: (performance.now() - started) / 1000 };
}

/** `ids`' tests and every test they depend on, in the suite's order. */
function withDependencies(tests: readonly SuiteTest[], ids: readonly string[]): SuiteTest[] {
  const byId = new Map(tests.map((test) => [test.id, test]));
  const wanted = new Set<string>();
  const add = (id: string): void => {
    if (wanted.has(id)) return;
    wanted.add(id);
    for (const dependency of byId.get(id)?.depends_on ?? []) add(dependency);
  };
  ids.forEach(add);
  return tests.filter((test) => wanted.has(test.id));
}

/** The suite's origin server: its own request handlers, dispatched as its server.mjs does. */
function originRequest(suite: SuiteModules, request: IncomingMessage, response: ServerResponse): void {
  const segments = new URL(request.url ?? '/', 'http://origin').pathname.split('/').slice(1);
  const dispatch = segments.shift() as 'config' | 'test' | 'state';
  const handle = suite.handlers[dispatch];
  if (handle === undefined) {
    response.writeHead(404).end();
    return;
  }
  handle(segments, request, response);
}

/** The handler: forwards the event to the origin as it is and answers with the origin's response, as an HTTP API integration would. */
function forwardTo(originUrl: string) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    // A proxy forwards no hop-by-hop field (RFC 9110 7.6.1), and closes the connection: some of the suite's
    // responses (a Transfer-Encoding it does not know) end only when it closes.
    const headers: Record<string, string> = { ...(event.headers as Record<string, string>), connection: 'close' };
    for (const name of ['host', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'proxy-connection']) delete headers[name];
    if (event.cookies !== undefined && event.cookies.length > 0) headers.cookie = event.cookies.join('; ');
    const body = event.body === undefined ? undefined : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
    const query = event.rawQueryString === '' ? '' : `?${event.rawQueryString}`;
    const answer = await new Promise<{ status: number; rawHeaders: string[]; body: Buffer }>((resolve, reject) => {
      let received: IncomingMessage | undefined;
      const chunks: Buffer[] = [];
      const done = () => resolve({ status: received!.statusCode ?? 502, rawHeaders: received!.rawHeaders, body: Buffer.concat(chunks) });
      // A response whose Content-Length is shorter than what follows (the suite sends one on purpose) is taken
      // as that length says, as a proxy does: the bytes after it, an error on the connection, are dropped.
      const drain = () => {
        for (let chunk = received!.read() as Buffer | null; chunk !== null; chunk = received!.read() as Buffer | null) chunks.push(chunk);
      };
      const failed = (error: Error) => {
        if (received?.complete !== true) return reject(error);
        drain();
        done();
      };
      const outgoing = httpRequest(`${originUrl}${event.rawPath}${query}`, { method: event.requestContext.http.method, headers, agent: false }, (incoming) => {
        received = incoming;
        incoming.on('readable', drain);
        incoming.on('end', done);
        incoming.on('error', failed);
      });
      outgoing.on('error', failed);
      outgoing.end(body);
    });
    const responseHeaders: Record<string, string> = {};
    const cookies: string[] = [];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      const [name, value] = [answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!];
      if (name.toLowerCase() === 'set-cookie') cookies.push(value);
      else responseHeaders[name] = responseHeaders[name] === undefined ? value : `${responseHeaders[name]}, ${value}`;
    }
    const text = utf8(answer.body);
    return {
      statusCode: answer.status,
      headers: responseHeaders,
      ...(cookies.length > 0 ? { cookies } : {}),
      body: text ?? answer.body.toString('base64'),
      isBase64Encoded: text === undefined,
    };
  };
}

/** Header fields the HTTP server owns (API Gateway too): never copied from a Lambda result. */
const SERVER_OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/** The cache as an HTTP server: the request as an HTTP API (v2) event, through the handler, and back. */
async function proxyRequest(handler: (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    const result = await handler(httpApiEventOf(request, Buffer.concat(chunks)), lambdaContext('cache-tests'));
    const answer = (typeof result === 'object' && result !== null && 'statusCode' in result ? result : { statusCode: 200, body: JSON.stringify(result) }) as APIGatewayProxyStructuredResultV2;
    for (const [name, value] of Object.entries(answer.headers ?? {})) if (!SERVER_OWNED.has(name.toLowerCase())) response.setHeader(name, String(value));
    if (answer.cookies !== undefined && answer.cookies.length > 0) response.setHeader('Set-Cookie', answer.cookies);
    response.statusCode = answer.statusCode ?? 200;
    response.end(answer.body === undefined ? undefined : Buffer.from(answer.body, answer.isBase64Encoded ? 'base64' : 'utf8'));
  } catch (error) {
    response.statusCode = 502;
    response.end(String((error as Error)?.message));
  }
}

/** An HTTP API (payload 2.0) event for `request`, as API Gateway builds it on the `$default` route. */
function httpApiEventOf(request: IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const target = request.url ?? '/';
  const queryAt = target.indexOf('?');
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(request.headersDistinct)) if (name !== 'cookie' && values !== undefined) headers[name] = values.join(',');
  const cookies = request.headersDistinct.cookie?.flatMap((value) => value.split(/;\s*/)).filter((cookie) => cookie !== '');
  const text = body.length === 0 ? undefined : utf8(body);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: queryAt === -1 ? '' : target.slice(queryAt + 1),
    ...(cookies === undefined || cookies.length === 0 ? {} : { cookies }),
    headers,
    requestContext: {
      accountId: '123456789012',
      apiId: 'cachetests',
      domainName: 'cachetests.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'cachetests',
      http: { method: request.method ?? 'GET', path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: headers['user-agent'] ?? '' },
      requestId: `cache-tests-${Math.random()}`,
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(body.length === 0 ? {} : { body: text ?? body.toString('base64') }),
    isBase64Encoded: body.length > 0 && text === undefined,
  };
}

/** `bytes` as text when they are UTF-8, else `undefined` (sent base64-encoded). */
function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

async function listen(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
