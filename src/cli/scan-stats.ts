import { ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { RESERVED_MARKER } from '../storage/keys.ts';
import { TAG_MARKER } from '../invalidation/tag-item.ts';
import { CHUNK_MARKER, META, NEGATIVE_MARKER, type AttributeNames } from '../storage/item.ts';

/** What a scan looks at and how gently. */
export interface ScanOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly attributes: AttributeNames;
  /** Only items of this namespace (keys starting `<namespace>:`). The scan still reads, and pays for, every item. */
  readonly namespace?: string;
  /** Most read capacity units per second to consume, so a scan cannot throttle production traffic. */
  readonly readUnitsPerSecond?: number;
  /** Items per Scan request. */
  readonly pageSize: number;
  /** Called after each page with the items scanned so far. */
  readonly onProgress?: (scanned: number) => void;
}

/** What a scan found. Sizes are DynamoDB's item size: attribute names plus values, in bytes (approximately, for numbers). */
export interface ScanStats {
  items: number;
  bytes: number;
  /** Items whose expiry has passed but that DynamoDB's TTL has not deleted yet. */
  expiredNotDeleted: number;
  /** Items by what they are: cached values, cached "not found", lone leases, chunks of large values, namespace metadata, tag states, and anything else. */
  kinds: Record<'values' | 'notFound' | 'leases' | 'chunks' | 'metadata' | 'tags' | 'foreign', number>;
  /** Items by size. */
  sizes: Array<{ upTo: string; items: number }>;
  /** The largest items (chunks count towards their own keys). */
  largest: Array<{ key: string; bytes: number }>;
  /** Items, bytes and expired items per namespace (the key's prefix before `:`; `(none)` without one). */
  namespaces: Array<{ namespace: string; items: number; bytes: number; expired: number }>;
  /** Read capacity units consumed, and how long the scan took. */
  readUnits: number;
  durationMs: number;
}

const SIZE_BUCKETS: Array<[string, number]> = [
  ['1 KiB', 1024],
  ['4 KiB', 4096],
  ['16 KiB', 16 * 1024],
  ['64 KiB', 64 * 1024],
  ['256 KiB', 256 * 1024],
  ['400 KiB', 400 * 1024],
];

/** Scans the table page by page (paced to `readUnitsPerSecond`) and gathers statistics. */
export async function scanTable(options: ScanOptions): Promise<ScanStats> {
  const started = performance.now();
  const now = Date.now() / 1000;
  const stats: ScanStats = {
    items: 0,
    bytes: 0,
    expiredNotDeleted: 0,
    kinds: { values: 0, notFound: 0, leases: 0, chunks: 0, metadata: 0, tags: 0, foreign: 0 },
    sizes: SIZE_BUCKETS.map(([upTo]) => ({ upTo, items: 0 })),
    largest: [],
    namespaces: [],
    readUnits: 0,
    durationMs: 0,
  };
  const namespaces = new Map<string, { namespace: string; items: number; bytes: number; expired: number }>();
  const { attributes } = options;
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await options.client.send(
      new ScanCommand({
        TableName: options.tableName,
        Limit: options.pageSize,
        ExclusiveStartKey: start,
        ReturnConsumedCapacity: 'TOTAL',
        ...(options.namespace === undefined
          ? {}
          : { FilterExpression: 'begins_with(#key, :prefix)', ExpressionAttributeNames: { '#key': attributes.key }, ExpressionAttributeValues: { ':prefix': { S: `${options.namespace}:` } } }),
      }),
    );
    for (const item of page.Items ?? []) {
      const key = item[attributes.key]?.S ?? '';
      const bytes = itemBytes(item);
      const expiresAt = Number(item[attributes.expiresAt]?.N);
      const expired = Number.isFinite(expiresAt) && expiresAt <= now;
      stats.items += 1;
      stats.bytes += bytes;
      if (expired) stats.expiredNotDeleted += 1;
      stats.kinds[itemKindOf(item, key, attributes)] += 1;
      const bucket = SIZE_BUCKETS.findIndex(([, limit]) => bytes <= limit);
      stats.sizes[bucket === -1 ? SIZE_BUCKETS.length - 1 : bucket]!.items += 1;
      stats.largest.push({ key, bytes });
      if (stats.largest.length > 50) stats.largest = stats.largest.sort((a, b) => b.bytes - a.bytes).slice(0, 10);
      const namespace = namespaceOf(key);
      const entry = namespaces.get(namespace) ?? { namespace, items: 0, bytes: 0, expired: 0 };
      entry.items += 1;
      entry.bytes += bytes;
      if (expired) entry.expired += 1;
      namespaces.set(namespace, entry);
    }
    // Eventually consistent scans cost 0.5 unit per 4 KB; DynamoDB reports it, local servers may not.
    const units = page.ConsumedCapacity?.CapacityUnits ?? Math.max(0.5, ((page.Items ?? []).reduce((sum, item) => sum + itemBytes(item), 0) / 4096) * 0.5);
    stats.readUnits += units;
    options.onProgress?.(stats.items);
    start = page.LastEvaluatedKey;
    if (start !== undefined && options.readUnitsPerSecond !== undefined) {
      const ahead = (stats.readUnits / options.readUnitsPerSecond) * 1000 - (performance.now() - started);
      if (ahead > 0) await sleep(ahead);
    }
  } while (start !== undefined);
  stats.largest = stats.largest.sort((a, b) => b.bytes - a.bytes).slice(0, 10);
  stats.namespaces = [...namespaces.values()].sort((a, b) => b.items - a.items);
  stats.durationMs = performance.now() - started;
  return stats;
}

/** What an item is: a cached value, a cached "not found", a lone lease, a chunk, namespace metadata, a tag's state, or `foreign` (not a cache item). */
export function itemKindOf(item: Record<string, AttributeValue>, key: string, attributes: AttributeNames): keyof ScanStats['kinds'] {
  const marker = item[META.encoding]?.S;
  if (key.endsWith(`${RESERVED_MARKER}meta`)) return 'metadata';
  if (marker === CHUNK_MARKER) return 'chunks';
  if (marker === TAG_MARKER) return 'tags';
  if (marker === NEGATIVE_MARKER || marker?.startsWith(`${NEGATIVE_MARKER}+`)) return 'notFound';
  if (item[attributes.value] !== undefined || item[META.chunks] !== undefined) return 'values';
  if (item[META.lease] !== undefined) return 'leases';
  return 'foreign';
}

function namespaceOf(key: string): string {
  const colon = key.indexOf(':');
  if (colon <= 0 || key.startsWith(RESERVED_MARKER)) return '(none)';
  return key.slice(0, colon);
}

/** DynamoDB's size of an item: names plus values (numbers approximated by their text). */
function itemBytes(item: Record<string, AttributeValue>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    total += Buffer.byteLength(name);
    if (value.S !== undefined) total += Buffer.byteLength(value.S);
    else if (value.B !== undefined) total += value.B.byteLength;
    else if (value.N !== undefined) total += Math.ceil(value.N.length / 2) + 1;
    else total += Buffer.byteLength(JSON.stringify(value));
  }
  return total;
}
