// Type test, checked by `tsc -p .` (the first step of `npm test`): a handler behind dynamoCache() sees
// `context.cache` typed as a DynamoCache without casts. The @ts-expect-error lines fail the build if the
// type ever degrades to `any`, because an unneeded @ts-expect-error is itself an error.
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { expectTypeOf } from 'vitest';
import { DynamoCache, dynamoCache, type DynamoCacheContext } from '../../src/index.ts';

export const handler = middy()
  .use(dynamoCache({ tableName: 'app-cache' }))
  .handler(async (_event, context) => {
    expectTypeOf(context.cache).toEqualTypeOf<DynamoCache>();
    expectTypeOf(context.awsRequestId).toEqualTypeOf<string>();
    const token = await context.cache.getOrSet('token', async () => 'abc', { ttlSeconds: 60 });
    expectTypeOf(token).toEqualTypeOf<string>();
    // @ts-expect-error DynamoCache has no such method: the property is really typed.
    context.cache.noSuchMethod();
    return token;
  });

export const renamed = middy()
  .use(dynamoCache({ tableName: 'app-cache', contextKey: 'tokens' }))
  .handler(async (_event, context) => {
    expectTypeOf(context.tokens).toEqualTypeOf<DynamoCache>();
    // @ts-expect-error the cache is under the configured name only.
    return context.cache;
  });

/** The `middy(baseHandler)` form: the base handler declares the context with DynamoCacheContext. */
const baseHandler = async (event: APIGatewayProxyEventV2, context: DynamoCacheContext): Promise<APIGatewayProxyResultV2> => {
  const user = await context.cache.get<{ name: string }>(`user:${event.pathParameters?.id}`);
  expectTypeOf(user).toEqualTypeOf<{ name: string } | undefined>();
  return { statusCode: 200, body: JSON.stringify(user ?? null) };
};
export const withBase = middy(baseHandler).use(dynamoCache({ tableName: 'app-cache', response: { ttlSeconds: 60 } }));
