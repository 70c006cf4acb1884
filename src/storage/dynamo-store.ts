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
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Attempt, CallBudget, DynamoGuard, FailureKind, Outcome } from '../resilience/dynamo-guard.ts';
import type { StatsRecorder } from '../observability/stats.ts';
import { META, type AttributeNames } from './item.ts';

/** A raw DynamoDB item. */
export type Item = Record<string, AttributeValue>;

/** The result of a lease attempt. */
export type LeaseAttempt =
  | { readonly acquired: true }
  /** Someone else holds the lease; `item` is the lease item when DynamoDB returned it. */
  | { readonly acquired: false; readonly item: Item | undefined };

/** The condition of taking a lease (see `DynamoStore.acquireLease`), over `#for`/`#lease` and `:for`/`:now`. */
export const LEASE_CONDITION = 'attribute_not_exists(#for) OR #for < :for OR attribute_not_exists(#lease) OR #lease < :now';

/** The condition of a conditional write: a ConditionExpression with its attribute names and values. */
export interface WriteCondition {
  readonly expression: string;
  readonly names: Record<string, string>;
  readonly values?: Record<string, AttributeValue>;
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

  /** The item stored under `storageKey`, or `undefined`. `detail` replaces the key in a failure's warning. */
  get(storageKey: string, options: { consistent?: boolean | undefined; detail?: Record<string, unknown>; call?: CallBudget } = {}): Promise<Outcome<Item | undefined>> {
    const { consistent = this.#s.consistentRead, detail, call } = options;
    const { client, tableName } = this.#s;
    return this.#s.guard.run(
      'GetItem',
      async ({ http }) => {
        const output = await client.send(
          new GetItemCommand({ TableName: tableName, Key: this.#key(storageKey), ConsistentRead: consistent }),
          http,
        );
        return output.Item;
      },
      detail ?? { key: storageKey },
      undefined,
      call,
    );
  }

  /**
   * Writes (replaces) `item`. With `notFresherThanMs`, only when the stored value is fresh until no later
   * than that (or has no freshness): a refresh then never replaces a newer value written meanwhile by
   * someone else. Resolves whether the item was written.
   */
  put(item: Item, notFresherThanMs?: number, call?: CallBudget): Promise<Outcome<boolean>> {
    const condition: WriteCondition | undefined =
      notFresherThanMs === undefined
        ? undefined
        : { expression: 'attribute_not_exists(#fresh) OR #fresh <= :seen', names: { '#fresh': META.freshUntil }, values: { ':seen': { N: String(notFresherThanMs) } } };
    return this.putIf(item, condition, call);
  }

  /**
   * Replaces the item with `item` only if the stored one still has the freshness `seenFreshMs` (`dc_fresh`; `0`:
   * none, an item the original service wrote): "if it still holds the value I saw". Resolves whether it did.
   */
  putIfUnchanged(item: Item, seenFreshMs: number, call?: CallBudget): Promise<Outcome<boolean>> {
    const condition: WriteCondition =
      seenFreshMs === 0
        ? { expression: 'attribute_exists(#key) AND attribute_not_exists(#fresh)', names: { '#key': this.#s.attributes.key, '#fresh': META.freshUntil } }
        : { expression: '#fresh = :seen', names: { '#fresh': META.freshUntil }, values: { ':seen': { N: String(seenFreshMs) } } };
    return this.putIf(item, condition, call);
  }

  /** Writes (replaces) `item` when `condition` holds (always without one). Resolves whether it was written. */
  putIf(item: Item, condition: WriteCondition | undefined, call?: CallBudget): Promise<Outcome<boolean>> {
    const { client, tableName, attributes } = this.#s;
    const expression =
      condition === undefined
        ? {}
        : { ConditionExpression: condition.expression, ExpressionAttributeNames: condition.names, ...(condition.values === undefined ? {} : { ExpressionAttributeValues: condition.values }) };
    return this.#s.guard.run(
      'PutItem',
      async ({ http }) => {
        try {
          await client.send(new PutItemCommand({ TableName: tableName, Item: item, ...expression }), http);
          return true;
        } catch (error) {
          if (!isConditionalCheckFailure(error)) throw error;
          return false;
        }
      },
      { key: item[attributes.key]?.S },
      undefined,
      call,
    );
  }

  /** Deletes the item under `storageKey` (a missing item is not an error). */
  delete(storageKey: string, call?: CallBudget): Promise<Outcome<void>> {
    const { client, tableName } = this.#s;
    return this.#s.guard.run(
      'DeleteItem',
      async ({ http }) => {
        await client.send(new DeleteItemCommand({ TableName: tableName, Key: this.#key(storageKey) }), http);
      },
      { key: storageKey },
      undefined,
      call,
    );
  }

  /**
   * The items under `storageKeys` (distinct), by key: BatchGetItem in slices of 100, sent in parallel,
   * with `UnprocessedKeys` retried with backoff inside the budget (`once`: not retried, the read is then
   * incomplete, `throttle`: a poll that asks again later itself). Items found before a slice fails or runs out
   * of budget are still returned; the keys left unread are misses.
   */
  async batchGet(
    storageKeys: readonly string[],
    options: { consistent?: boolean; timeoutMs?: number; call?: CallBudget; once?: boolean } = {},
  ): Promise<{ items: Map<string, Item>; complete: boolean; failure?: FailureKind; unread: ReadonlySet<string> }> {
    const { consistent = this.#s.consistentRead, timeoutMs, call, once = false } = options;
    const { client, tableName, attributes } = this.#s;
    const found = new Map<string, Item>();
    const sliced = slices(storageKeys, BATCH_GET_LIMIT);
    // Keys DynamoDB left unprocessed (throttled) in a read made `once`.
    const unprocessed = new Set<string>();
    const outcomes = await Promise.all(
      sliced.map((slice) =>
        this.#s.guard.run(
          'BatchGetItem',
          (attempt) =>
            this.#untilProcessed(
              slice.filter((key) => !found.has(key)).map((key) => this.#key(key)),
              async (keys) => {
                const output = await client.send(new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: consistent } } }), attempt.http);
                for (const item of output.Responses?.[tableName] ?? []) {
                  const key = item[attributes.key]?.S;
                  if (key !== undefined) found.set(key, item);
                }
                const left = output.UnprocessedKeys?.[tableName]?.Keys ?? [];
                if (!once || left.length === 0) return left;
                for (const key of left) if (key[attributes.key]?.S !== undefined) unprocessed.add(key[attributes.key]!.S!);
                return [];
              },
              attempt,
            ),
          { key: slice[0], keys: slice.length },
          timeoutMs,
          call,
        ),
      ),
    );
    // `complete`: every request succeeded, so a key absent from `items` is absent from the table; `unread`: the
    // keys of the requests that failed, or left unprocessed by a read made `once`, that were not found.
    const failed = outcomes.find((outcome) => !outcome.ok);
    const unread = new Set(unprocessed);
    for (const [index, slice] of sliced.entries()) if (!outcomes[index]!.ok) for (const key of slice) if (!found.has(key)) unread.add(key);
    if (failed !== undefined && !failed.ok) return { items: found, complete: false, failure: failed.kind, unread };
    return unread.size > 0 ? { items: found, complete: false, failure: 'throttle', unread } : { items: found, complete: true, unread };
  }

  /** Writes `items` with BatchWriteItem, 25 per request, in parallel, retrying `UnprocessedItems`. Resolves whether all were written. */
  async batchWrite(items: readonly Item[], timeoutMs?: number, call?: CallBudget): Promise<boolean> {
    return (await this.batchPut(items, timeoutMs, call)).every((written) => written);
  }

  /**
   * As `batchWrite`, resolving for each item whether it was written: the items of a request that failed (its
   * retries and budget spent) count as not written, though some may have been.
   */
  async batchPut(items: readonly Item[], timeoutMs?: number, call?: CallBudget): Promise<boolean[]> {
    const { client, tableName } = this.#s;
    const sliced = slices(items, BATCH_WRITE_LIMIT);
    const outcomes = await Promise.all(
      sliced.map((slice) =>
        this.#s.guard.run(
          'BatchWriteItem',
          (attempt) =>
            this.#untilProcessed(
              slice.map((item): WriteRequest => ({ PutRequest: { Item: item } })),
              async (requests) => {
                const output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }), attempt.http);
                return output.UnprocessedItems?.[tableName] ?? [];
              },
              attempt,
            ),
          { key: slice[0]?.[this.#s.attributes.key]?.S, items: slice.length },
          timeoutMs,
          call,
        ),
      ),
    );
    return sliced.flatMap((slice, index) => slice.map(() => outcomes[index]!.ok));
  }

  /** Sends `pending` and then whatever comes back unprocessed, backing off between rounds, until none is left. */
  async #untilProcessed<T>(pending: T[], send: (batch: T[]) => Promise<T[]>, attempt: Attempt): Promise<void> {
    for (let round = 0; pending.length > 0; round++) {
      if (round > 0) {
        attempt.throttled();
        this.#s.stats.increment('retries');
        // Unprocessed requests mean the table is at capacity: back off (exponential, full jitter) before asking again.
        await sleep(Math.random() * Math.min(200, 10 * 2 ** round), undefined, { signal: attempt.signal });
      }
      pending = await send(pending);
    }
  }

  /**
   * Takes a refresh lease with one conditional write of its small lease item (see `leaseItem`). It wins
   * when there is no lease yet, when the lease there was taken to replace an older value than the one the
   * caller saw (that refresh is over), or when it has expired (its holder died, or it outlived its value:
   * deleted, or removed by DynamoDB's TTL before the lease item). A live lease taken for a newer value than
   * the caller saw means the caller's read is out of date: it loses, and rereads. (A caller that wins with an
   * out-of-date read wastes one fetch at most: its write is conditional on the value it saw.)
   */
  async acquireLease(item: Item, nowMs: number, call?: CallBudget): Promise<Outcome<LeaseAttempt>> {
    const { client, tableName, attributes } = this.#s;
    return this.#s.guard.run(
      'PutItem',
      async ({ http }) => {
        try {
          await client.send(
            new PutItemCommand({
              TableName: tableName,
              Item: item,
              ConditionExpression: LEASE_CONDITION,
              ExpressionAttributeNames: { '#for': META.leaseFor, '#lease': META.lease },
              ExpressionAttributeValues: { ':for': item[META.leaseFor]!, ':now': { N: String(nowMs) } },
              // Saves a read when DynamoDB honours it; dynalite ignores it, so callers read when `item` is absent.
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            }),
            http,
          );
          return { acquired: true } as const;
        } catch (error) {
          if (!isConditionalCheckFailure(error)) throw error;
          return { acquired: false, item: (error as ConditionalCheckFailedException).Item } as const;
        }
      },
      { key: item[attributes.key]?.S },
      undefined,
      call,
    );
  }

  /**
   * Gives a lease back early, if `owner` still holds it: deletes the lease item (the fetch stored nothing), or
   * replaces it with `ended`, an already expired lease that says why it ended (the fetch failed).
   */
  async releaseLease(leaseKey: string, owner: string, call?: CallBudget, ended?: Item): Promise<Outcome<void>> {
    const { client, tableName } = this.#s;
    const onlyIfOwner = {
      TableName: tableName,
      ConditionExpression: '#owner = :owner',
      ExpressionAttributeNames: { '#owner': META.leaseOwner },
      ExpressionAttributeValues: { ':owner': { S: owner } },
    };
    return this.#s.guard.run(
      ended === undefined ? 'DeleteItem' : 'PutItem',
      async ({ http }) => {
        try {
          if (ended === undefined) await client.send(new DeleteItemCommand({ ...onlyIfOwner, Key: this.#key(leaseKey) }), http);
          else await client.send(new PutItemCommand({ ...onlyIfOwner, Item: ended }), http);
        } catch (error) {
          // Not ours any more: the lease expired and someone else took it.
          if (!isConditionalCheckFailure(error)) throw error;
        }
      },
      { key: leaseKey },
      undefined,
      call,
    );
  }

  /** Adds one to the namespace generation in the metadata item `metaKey` (atomically) and returns the new value. */
  bumpGeneration(metaKey: string): Promise<Outcome<number>> {
    const { client, tableName } = this.#s;
    return this.#s.guard.run(
      'UpdateItem',
      async ({ http }) => {
        const output = await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: this.#key(metaKey),
            UpdateExpression: 'ADD #generation :one',
            ExpressionAttributeNames: { '#generation': META.namespaceGeneration },
            ExpressionAttributeValues: { ':one': { N: '1' } },
            ReturnValues: 'UPDATED_NEW',
          }),
          http,
        );
        return Number(output.Attributes?.[META.namespaceGeneration]?.N);
      },
      { key: metaKey },
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
