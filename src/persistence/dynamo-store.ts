import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type UpdateItemCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoGuard, Outcome } from '../resilience.ts';
import type { StatsRecorder } from '../stats.ts';
import { META, type AttributeNames } from './item.ts';

/** A raw DynamoDB item. */
export type Item = Record<string, AttributeValue>;

/** The result of a lease attempt. */
export type LeaseAttempt =
  | { readonly acquired: true }
  /** Someone else holds the lease, or the value is fresh; `item` is the current item when DynamoDB returned it. */
  | { readonly acquired: false; readonly item: Item | undefined };

/** What a lease attempt needs. */
export interface LeaseRequest {
  readonly owner: string;
  readonly nowMs: number;
  readonly untilMs: number;
  /**
   * Only win when the stored value is fresh until no later than this (epoch ms): `nowMs` to refresh a
   * stale value, the freshness seen on read for an early refresh. A refresh someone else already finished
   * makes the value fresher, so it is not done twice.
   */
  readonly notFreshAfterMs: number;
}

/** BatchGetItem's limit on keys per request. */
export const BATCH_GET_LIMIT = 100;
/** BatchWriteItem's limit on items per request. */
export const BATCH_WRITE_LIMIT = 25;

/** Settings of a {@link DynamoStore}. */
export interface StoreSettings {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly attributes: AttributeNames;
  readonly consistentRead: boolean;
  readonly guard: DynamoGuard;
  readonly stats: StatsRecorder;
}

/**
 * Item-level DynamoDB operations, each run through the {@link DynamoGuard} (budget, retries, breaker) and
 * returning an {@link Outcome} instead of throwing.
 */
export class DynamoStore {
  readonly #s: StoreSettings;

  constructor(settings: StoreSettings) {
    this.#s = settings;
  }

  /** The item stored under `storageKey`, or `undefined`. */
  get(storageKey: string, consistent = this.#s.consistentRead): Promise<Outcome<Item | undefined>> {
    const { client, tableName } = this.#s;
    return this.#s.guard.run(
      'GetItem',
      async (abortSignal) => {
        const output = await client.send(
          new GetItemCommand({ TableName: tableName, Key: this.#key(storageKey), ConsistentRead: consistent }),
          { abortSignal },
        );
        return output.Item;
      },
      { key: storageKey },
    );
  }

  /** Writes (replaces) `item`. */
  put(item: Item): Promise<Outcome<void>> {
    const { client, tableName, attributes } = this.#s;
    return this.#s.guard.run(
      'PutItem',
      async (abortSignal) => {
        await client.send(new PutItemCommand({ TableName: tableName, Item: item }), { abortSignal });
      },
      { key: item[attributes.key]?.S },
    );
  }

  /** Deletes the item under `storageKey` (a missing item is not an error). */
  delete(storageKey: string): Promise<Outcome<void>> {
    const { client, tableName } = this.#s;
    return this.#s.guard.run(
      'DeleteItem',
      async (abortSignal) => {
        await client.send(new DeleteItemCommand({ TableName: tableName, Key: this.#key(storageKey) }), { abortSignal });
      },
      { key: storageKey },
    );
  }

  /**
   * The items under `storageKeys` (distinct), by key: BatchGetItem in slices of 100, sent in parallel,
   * with `UnprocessedKeys` retried with backoff inside the budget. Items found before a slice fails or
   * runs out of budget are still returned; the keys left unread are misses.
   */
  async batchGet(storageKeys: readonly string[], consistent = this.#s.consistentRead, timeoutMs?: number): Promise<{ items: Map<string, Item>; complete: boolean }> {
    const { client, tableName, attributes } = this.#s;
    const found = new Map<string, Item>();
    const outcomes = await Promise.all(
      slices(storageKeys, BATCH_GET_LIMIT).map((slice) =>
        this.#s.guard.run(
          'BatchGetItem',
          (abortSignal) =>
            this.#untilProcessed(
              slice.filter((key) => !found.has(key)).map((key) => this.#key(key)),
              async (keys) => {
                const output = await client.send(new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: consistent } } }), { abortSignal });
                for (const item of output.Responses?.[tableName] ?? []) {
                  const key = item[attributes.key]?.S;
                  if (key !== undefined) found.set(key, item);
                }
                return output.UnprocessedKeys?.[tableName]?.Keys ?? [];
              },
              abortSignal,
            ),
          { keys: slice.length },
          timeoutMs,
        ),
      ),
    );
    // `complete`: every request succeeded, so a key absent from `items` is absent from the table.
    return { items: found, complete: outcomes.every((outcome) => outcome.ok) };
  }

  /** Writes `items` with BatchWriteItem, 25 per request, in parallel, retrying `UnprocessedItems`. Resolves whether all were written. */
  async batchWrite(items: readonly Item[], timeoutMs?: number): Promise<boolean> {
    const { client, tableName } = this.#s;
    const outcomes = await Promise.all(
      slices(items, BATCH_WRITE_LIMIT).map((slice) =>
        this.#s.guard.run(
          'BatchWriteItem',
          (abortSignal) =>
            this.#untilProcessed(
              slice.map((item): WriteRequest => ({ PutRequest: { Item: item } })),
              async (requests) => {
                const output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }), { abortSignal });
                return output.UnprocessedItems?.[tableName] ?? [];
              },
              abortSignal,
            ),
          { items: slice.length },
          timeoutMs,
        ),
      ),
    );
    return outcomes.every((outcome) => outcome.ok);
  }

  /** Sends `pending` and then whatever comes back unprocessed, backing off between rounds, until none is left. */
  async #untilProcessed<T>(pending: T[], send: (batch: T[]) => Promise<T[]>, abortSignal: AbortSignal): Promise<void> {
    for (let round = 0; pending.length > 0; round++) {
      if (round > 0) {
        this.#s.stats.increment('retries');
        // Unprocessed requests mean the table is at capacity: back off (exponential, full jitter) before asking again.
        await sleep(Math.random() * Math.min(200, 10 * 2 ** round), undefined, { signal: abortSignal });
      }
      pending = await send(pending);
    }
  }

  /**
   * Takes the refresh lease on `storageKey` with one conditional write: it wins when no unexpired lease
   * exists and the value is fresh until no later than `notFreshAfterMs`. Every value this library writes
   * carries its freshness (`dc_fresh`); an item without it (a lease alone, or a value the original service
   * wrote) may be refreshed. An item created by the lease alone gets an expiry, so DynamoDB's TTL removes
   * it if nobody writes.
   */
  async acquireLease(storageKey: string, request: LeaseRequest): Promise<Outcome<LeaseAttempt>> {
    const outcome = await this.#update(storageKey, {
      UpdateExpression: 'SET #lease = :until, #owner = :owner, #exp = if_not_exists(#exp, :leaseExpiry)',
      ConditionExpression: '(attribute_not_exists(#lease) OR #lease < :now) AND (attribute_not_exists(#fresh) OR #fresh <= :freshMs)',
      ExpressionAttributeNames: { '#lease': META.lease, '#owner': META.leaseOwner, '#exp': this.#s.attributes.expiresAt, '#fresh': META.freshUntil },
      ExpressionAttributeValues: {
        ':until': { N: String(request.untilMs) },
        ':owner': { S: request.owner },
        ':now': { N: String(request.nowMs) },
        ':leaseExpiry': { N: String(Math.ceil(request.untilMs / 1000)) },
        ':freshMs': { N: String(request.notFreshAfterMs) },
      },
      // Saves a read when DynamoDB honours it; dynalite ignores it, so callers read when `item` is absent.
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    if (!outcome.ok) return outcome;
    return { ok: true, value: outcome.value.applied ? { acquired: true } : { acquired: false, item: outcome.value.item } };
  }

  /** Gives the lease back early (the fetch failed or stored nothing); only the owner's lease is removed. */
  async releaseLease(storageKey: string, owner: string): Promise<Outcome<boolean>> {
    const outcome = await this.#update(storageKey, {
      UpdateExpression: 'REMOVE #lease, #owner',
      ConditionExpression: '#owner = :owner',
      ExpressionAttributeNames: { '#lease': META.lease, '#owner': META.leaseOwner },
      ExpressionAttributeValues: { ':owner': { S: owner } },
    });
    // Not applied: the lease expired and someone else took it.
    return outcome.ok ? { ok: true, value: outcome.value.applied } : outcome;
  }

  /** Adds one to the namespace generation in the metadata item `metaKey` (atomically) and returns the new value. */
  async bumpGeneration(metaKey: string): Promise<Outcome<number>> {
    const outcome = await this.#update(metaKey, {
      UpdateExpression: 'ADD #generation :one',
      ExpressionAttributeNames: { '#generation': META.namespaceGeneration },
      ExpressionAttributeValues: { ':one': { N: '1' } },
      ReturnValues: 'UPDATED_NEW',
    });
    if (!outcome.ok) return outcome;
    // Without a condition the update always applies.
    const attributes = outcome.value.applied ? outcome.value.attributes : undefined;
    return { ok: true, value: Number(attributes?.[META.namespaceGeneration]?.N) };
  }

  /**
   * One UpdateItem through the guard. A failed condition is an answer, not a failure: it resolves with
   * `applied: false` and the current item when DynamoDB returned it.
   */
  #update(storageKey: string, input: Omit<UpdateItemCommandInput, 'TableName' | 'Key'>): Promise<Outcome<{ applied: true; attributes: Item | undefined } | { applied: false; item: Item | undefined }>> {
    const { client, tableName } = this.#s;
    return this.#s.guard.run(
      'UpdateItem',
      async (abortSignal) => {
        try {
          const output = await client.send(new UpdateItemCommand({ TableName: tableName, Key: this.#key(storageKey), ...input }), { abortSignal });
          return { applied: true, attributes: output.Attributes } as const;
        } catch (error) {
          if (!isConditionalCheckFailure(error)) throw error;
          return { applied: false, item: (error as ConditionalCheckFailedException).Item } as const;
        }
      },
      { key: storageKey },
    );
  }

  #key(storageKey: string): Item {
    return { [this.#s.attributes.key]: { S: storageKey } };
  }
}

function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

function slices<T>(all: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < all.length; i += size) result.push(all.slice(i, i + size));
  return result;
}
