import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * The DynamoDB item schema.
 *
 * Three attributes have configurable names; their defaults are the original Python `CacheService`'s, so
 * `dynamo-cache` is a drop-in on its table. Everything else the library stores lives in `dc_*` attributes
 * that the original service never looks at.
 */
export interface AttributeNames {
  /** String partition key. Default `id`. */
  readonly key: string;
  /** The cached value: `S` for text, `B` for binary or transformed data. Default `cached_value`. */
  readonly value: string;
  /** Expiry, a Number of epoch seconds: point the table's TTL at it. Default `expires_at`. */
  readonly expiresAt: string;
}

/** The original Python service's attribute names. */
export const DEFAULT_ATTRIBUTE_NAMES: AttributeNames = { key: 'id', value: 'cached_value', expiresAt: 'expires_at' };

/** Names of the library's own attributes. Not configurable: they never clash with the original schema. */
export const META = {
  /** How the value is encoded (`json`, `bytes`, `json+gzip`...). Absent: a plain string. */
  encoding: 'dc_enc',
} as const;

/** The stored form of a value: the encoding marker and the data as DynamoDB holds it. */
export interface StoredBody {
  /** `undefined` for a plain string written with no marker (as the original service writes). */
  readonly marker: string | undefined;
  readonly data: string | Uint8Array;
}

/** One cache item as read from or written to DynamoDB, before the value is decoded. */
export interface StoredRecord {
  readonly body: StoredBody;
  /** Epoch seconds; fractional values (written by the original service) are accepted on read. */
  readonly expiresAt: number;
}

/** An item that is not a cache item this library can read: wrong types, missing attributes. */
export class CorruptItemError extends Error {
  override name = 'CorruptItemError';
}

/** Builds the DynamoDB item for `record` under partition key `storageKey`. */
export function toItem(names: AttributeNames, storageKey: string, record: StoredRecord): Record<string, AttributeValue> {
  const { body } = record;
  const item: Record<string, AttributeValue> = {
    [names.key]: { S: storageKey },
    [names.value]: typeof body.data === 'string' ? { S: body.data } : { B: body.data },
    [names.expiresAt]: { N: String(record.expiresAt) },
  };
  if (body.marker !== undefined) item[META.encoding] = { S: body.marker };
  return item;
}

/** Reads a record from a DynamoDB item; throws `CorruptItemError` when its shape is wrong. */
export function fromItem(names: AttributeNames, item: Record<string, AttributeValue>): StoredRecord {
  const expiresAt = Number(requireAttribute(item, names.expiresAt, 'N'));
  if (!Number.isFinite(expiresAt)) throw new CorruptItemError(`${names.expiresAt} is not a number`);
  const value = item[names.value];
  let data: string | Uint8Array;
  if (value?.S !== undefined) data = value.S;
  else if (value?.B !== undefined) data = value.B;
  else throw new CorruptItemError(`${names.value} is missing or neither S nor B`);
  const marker = item[META.encoding] === undefined ? undefined : requireAttribute(item, META.encoding, 'S');
  return { body: { marker, data }, expiresAt };
}

function requireAttribute(item: Record<string, AttributeValue>, name: string, type: 'S' | 'N'): string {
  const attribute = item[name] as Record<string, unknown> | undefined;
  const value = attribute?.[type];
  if (typeof value !== 'string') throw new CorruptItemError(`${name} is missing or not of type ${type}`);
  return value;
}
