// A DynamoDB Streams consumer of the application's own table (template.yaml's StreamInvalidationFunction, when
// InvalidationStreamArn is given): when a user item changes, whatever any function cached from it stops being
// fresh, whichever function wrote the change (a console edit, a batch job, another service). It bundles
// nothing: `dynamo-cache` comes from the CacheLayer, the AWS SDK from the Lambda runtime. Configuration is
// environment only: DYNAMO_CACHE_TABLE and DYNAMO_CACHE_NAMESPACE, the namespace of the functions whose
// values and responses it invalidates.
import { DynamoCache, invalidateRoutes } from 'dynamo-cache';

/** One cache per execution environment, made on the first batch. Nothing is read here: no memory tier. */
let cache;

/**
 * What a changed item invalidates, or `undefined` for an item of no interest. Here a single-table design
 * whose users are `pk = USER#<id>`: the values tagged `user:<id>` (`cache.set(..., { tags: ['user:42'] })`,
 * a route's `tags: ['user:{id}']`, a response's `Cache-Tag: user:42`), the memoized `GET /users/<id>`, and
 * the list `GET /users`.
 */
export function invalidationsOf(record) {
  const id = /^USER#(.+)$/.exec(record.dynamodb?.Keys?.pk?.S ?? '')?.[1];
  if (id === undefined) return undefined;
  return { tags: [`user:${id}`], routes: [`GET /users/${encodeURIComponent(id)}`, 'GET /users'] };
}

/**
 * Invalidates what each record names: one write per tag and route, all in parallel. When an invalidation was
 * not recorded (DynamoDB failing: the cache logs why) the batch fails, and Lambda retries it (bisected, for
 * MaximumRetryAttempts): invalidating twice does no harm.
 */
export async function handler(event) {
  cache ??= new DynamoCache({ memory: false });
  const done = await Promise.all(
    event.Records.map(async (record) => {
      const what = invalidationsOf(record);
      if (what === undefined) return true;
      const [tags, routes] = await Promise.all([cache.invalidateTags(what.tags), invalidateRoutes(cache, what.routes)]);
      return tags && routes;
    }),
  );
  const failed = done.filter((recorded) => !recorded).length;
  if (failed > 0) throw new Error(`${failed} of ${event.Records.length} invalidations not recorded; the batch is retried`);
}
