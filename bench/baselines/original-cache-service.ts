import { GetItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * A faithful TypeScript port of the original Python `CacheService`
 * (../shared/seed/original-python-cache-service.md): the baseline users have today. Same schema
 * (`id`, `cached_value` as S, `expires_at` as a fractional Number), same `update_item`/`get_item` calls,
 * same expiry check, and the same lack of error handling: a throttled or failed call throws.
 */
export class OriginalCacheService {
  readonly #ddb: DynamoDBClient;
  readonly #cacheTable: string;

  constructor(ddb: DynamoDBClient, cacheTable: string) {
    this.#ddb = ddb;
    this.#cacheTable = cacheTable;
  }

  /** `set(key, value, ttl_seconds=3300)`: UpdateItem SET cached_value, expires_at. */
  async set(key: string, value: string, ttlSeconds = 3300): Promise<void> {
    const ttl = this.setTtl(ttlSeconds);
    await this.#ddb.send(
      new UpdateItemCommand({
        TableName: this.#cacheTable,
        Key: { id: { S: key } },
        UpdateExpression: 'SET cached_value = :cached_value, expires_at = :expires_at',
        ExpressionAttributeValues: {
          ':cached_value': { S: value },
          // Python: str(ttl.timestamp()), a float such as "1764171000.123456".
          ':expires_at': { N: String(ttl.getTime() / 1000) },
        },
      }),
    );
  }

  /** `get(key)`: the value when the item has both attributes and has not expired, else `undefined` (None). */
  async get(key: string): Promise<string | undefined> {
    const response = await this.#ddb.send(new GetItemCommand({ TableName: this.#cacheTable, Key: { id: { S: key } } }));
    const item = response.Item;
    if (item !== undefined && 'cached_value' in item && 'expires_at' in item) {
      if (!this.hasExpired(Number.parseFloat(item.expires_at!.N!))) {
        return item.cached_value!.S;
      }
    }
    return undefined;
  }

  /** `set_ttl(ttl_seconds=3300)`: now plus `ttlSeconds`. */
  setTtl(ttlSeconds = 3300): Date {
    return new Date(Date.now() + ttlSeconds * 1000);
  }

  /** `has_expired(expire)`: now is past `expire` (epoch seconds). */
  hasExpired(expire: number): boolean {
    return Date.now() / 1000 > expire;
  }
}
