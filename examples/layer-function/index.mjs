// Example HTTP API function for template.yaml. It bundles nothing: `dynamo-cache` and `@middy/core` come
// from the CacheLayer, the AWS SDK from the Lambda runtime. Configuration is environment only:
// DYNAMO_CACHE_TABLE and DYNAMO_CACHE_NAMESPACE (set by the template).
import middy from '@middy/core';
import { dynamoCache } from 'dynamo-cache';

/** Stands in for a slow or rate-limited upstream (Cognito, S3, a partner API). */
async function loadUser(id) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { id, name: `User ${id}`, loadedAt: new Date().toISOString() };
}

const baseHandler = async (event, context) => {
  if (event.routeKey === 'GET /health') return { statusCode: 200, body: 'ok' };
  const id = event.pathParameters?.id ?? 'unknown';
  // context.cache is the same DynamoCache the middleware uses: data caching beside response memoization.
  // `deadline: context`: the cache never waits (on DynamoDB, on another environment's refresh) past the
  // invocation's remaining time less deadlineMarginMs, so loadUser always has time to run.
  const user = await context.cache.getOrSet(`user:${id}`, () => loadUser(id), { ttlSeconds: 300, deadline: context });
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60' },
    body: JSON.stringify(user),
  };
};

export const handler = middy(baseHandler).use(
  dynamoCache({
    response: {
      ttlSeconds: 60,
      staleIfErrorSeconds: 300,
      routes: { 'GET /health': false },
    },
  }),
);
