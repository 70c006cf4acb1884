import { GetItemCommand, ScanCommand, type DynamoDBClient, type TableDescription } from '@aws-sdk/client-dynamodb';
import type { AttributeNames } from '../storage/item.ts';
import { CliError, EXIT } from './failures.ts';
import { itemKindOf } from './scan-stats.ts';

/** Items read to judge whether a table holds cache items before writing into it: one Scan page (about 0.5-3 read units). */
const SAMPLE_ITEMS = 25;

/**
 * Refuses a table whose key is not the cache's: one String partition key named `attributes.key`. The library
 * could neither read nor write it, and it is most likely another table (`--table` mistyped, or an application's).
 */
export function assertCacheKeySchema(table: TableDescription | undefined, tableName: string, attributes: AttributeNames): void {
  const keys = table?.KeySchema ?? [];
  const hash = keys.find((key) => key.KeyType === 'HASH');
  const type = table?.AttributeDefinitions?.find((definition) => definition.AttributeName === hash?.AttributeName)?.AttributeType;
  if (keys.length === 1 && hash?.AttributeName === attributes.key && type === 'S') return;
  const found = keys.map((key) => `${key.AttributeName} (${key.KeyType === 'HASH' ? 'partition' : 'sort'} key)`).join(' and ');
  const hint = keys.length === 1 && type === 'S' ? `; if it is a cache table with key attribute ${hash?.AttributeName}, pass --key-attribute ${hash?.AttributeName}` : '';
  throw new CliError(`table "${tableName}" is not a cache table: it is keyed by ${found || 'nothing known'}, and a cache table by one String partition key "${attributes.key}"${hint}`, EXIT.usage);
}

/**
 * Before a command writes: refuses a table holding items that are not cache items (an application's table with
 * the same key attribute), judged from the first items of a Scan and from the item the command would replace
 * (`storageKey`). A value, a cached "not found", a lease, a chunk, namespace
 * metadata or a tag's state is a cache item, as the original Python service's `id`/`cached_value`/`expires_at` items are.
 */
export async function assertHoldsCacheItems(client: DynamoDBClient, tableName: string, attributes: AttributeNames, storageKey: string | undefined): Promise<void> {
  const refuse = (what: string) =>
    new CliError(`table "${tableName}" holds ${what} that is not a cache item: writing could replace or disturb application data; check --table, or pass --force if this is the cache table`, EXIT.usage);
  if (storageKey !== undefined) {
    const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { [attributes.key]: { S: storageKey } }, ConsistentRead: true }));
    if (Item !== undefined && itemKindOf(Item, storageKey, attributes) === 'foreign') throw refuse('an item under that key');
  }
  const { Items = [] } = await client.send(new ScanCommand({ TableName: tableName, Limit: SAMPLE_ITEMS }));
  if (Items.some((item) => itemKindOf(item, item[attributes.key]?.S ?? '', attributes) === 'foreign')) throw refuse('an item');
}
