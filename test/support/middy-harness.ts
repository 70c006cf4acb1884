import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { vi } from 'vitest';
import { dynamoCache, type DynamoCacheMiddlewareOptions } from '../../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './dynalite.ts';
import type { DynaliteFixture } from './fixtures.ts';
import { lambdaContext } from './http-events.ts';
import { RecordingLogger } from './recording-logger.ts';

/** A Lambda HTTP response as the tests read it. */
export type Response = { statusCode: number; headers?: Record<string, string>; multiValueHeaders?: Record<string, string[]>; body?: string; cookies?: string[]; isBase64Encoded?: boolean };

/** A handler as the tests write it. */
export type Handler = (event: any, context: Context) => Promise<unknown>;

/** The handler as the Lambda runtime calls it: with a plain context (Middy types the extended one). */
export const asLambda = (handler: unknown) => handler as (event: unknown, context: Context) => Promise<unknown>;

/**
 * A Middy handler (the real @middy/core) with `dynamoCache` outermost, on a fresh table of `db` unless
 * `options.tableName` names one, and a spy counting handler runs. Each call is one execution environment.
 */
export async function setupMiddy(db: DynaliteFixture, body: Handler, options: DynamoCacheMiddlewareOptions = {}, endpoint = db.endpoint) {
  const tableName = options.tableName ?? (await db.newTable());
  const logger = new RecordingLogger();
  const handlerSpy = vi.fn(body);
  const handler = middy(handlerSpy).use(
    dynamoCache({ tableName, clientConfig: localClientConfig(endpoint), logger, timeoutMs: 5000, response: { ttlSeconds: 60 }, ...options }),
  );
  const invoke = (event: unknown, context: Context = lambdaContext()) => asLambda(handler)(event, context) as Promise<any>;
  return { invoke, handlerSpy, logger, tableName };
}

/** A JSON response. */
export const json = (statusCode: number, data: unknown, headers: Record<string, string> = {}): Response => ({
  statusCode,
  headers: { 'Content-Type': 'application/json', ...headers },
  body: JSON.stringify(data),
});

/** A response header by any spelling of its name, from `headers` or `multiValueHeaders`. */
export const header = (response: Response, name: string): string | undefined => {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(response.headers ?? {})) if (key.toLowerCase() === lower) return value;
  for (const [key, values] of Object.entries(response.multiValueHeaders ?? {})) if (key.toLowerCase() === lower) return values.join(', ');
  return undefined;
};

/** Who the handler thinks is asking, from whichever identity the event carries. */
export function whoIs(e: any): string {
  return (
    e.requestContext?.authorizer?.claims?.sub ??
    e.requestContext?.authorizer?.jwt?.claims?.sub ??
    e.requestContext?.authorizer?.iam?.userId ??
    e.requestContext?.authorizer?.principalId ??
    e.headers?.['x-amzn-oidc-identity'] ??
    'anonymous'
  );
}

/** A request header of an event, by lower-case name, from `headers` or `multiValueHeaders`. */
export function headerOf(e: any, name: string): string | undefined {
  for (const [key, value] of Object.entries(e.headers ?? {})) if (key.toLowerCase() === name) return value as string;
  for (const [key, values] of Object.entries(e.multiValueHeaders ?? {})) if (key.toLowerCase() === name) return (values as string[]).join(', ');
  return undefined;
}

/** The path of an event as its handler reads it. */
export const pathOf = (e: any): string => e.rawPath ?? e.path;

/** The method of an event as its handler reads it. */
export const methodOf = (e: any): string => e.httpMethod ?? e.requestContext?.http?.method;
