import {
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoGuard, Outcome } from '../resilience.ts';
import type { StatsRecorder } from '../stats.ts';
import type { AttributeNames } from './item.ts';

/** A raw DynamoDB item. */
export type Item = Record<string, AttributeValue>;

/** BatchGetItem's limit on keys per request. */
export const BATCH_GET_LIMIT = 100;

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
   * The items under `storageKeys` (distinct), by key: BatchGetItem in chunks of 100, sent in parallel,
   * with `UnprocessedKeys` retried with backoff inside the budget. Items found before a chunk fails or
   * runs out of budget are still returned; the keys left unread are misses.
   */
  async batchGet(storageKeys: readonly string[], consistent = this.#s.consistentRead): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    const chunks: string[][] = [];
    for (let i = 0; i < storageKeys.length; i += BATCH_GET_LIMIT) chunks.push(storageKeys.slice(i, i + BATCH_GET_LIMIT));
    await Promise.all(
      chunks.map((chunk) =>
        this.#s.guard.run('BatchGetItem', (abortSignal) => this.#batchGetChunk(chunk, consistent, found, abortSignal), {
          keys: chunk.length,
        }),
      ),
    );
    return found;
  }

  async #batchGetChunk(chunk: string[], consistent: boolean, found: Map<string, Item>, abortSignal: AbortSignal): Promise<void> {
    const { client, tableName, attributes, stats } = this.#s;
    let keys: Item[] = chunk.filter((key) => !found.has(key)).map((key) => this.#key(key));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt > 0) {
        stats.increment('retries');
        // Unprocessed keys mean the table is at capacity: back off (exponential, full jitter) before asking again.
        await sleep(Math.random() * Math.min(200, 10 * 2 ** attempt), undefined, { signal: abortSignal });
      }
      const output = await client.send(
        new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: consistent } } }),
        { abortSignal },
      );
      for (const item of output.Responses?.[tableName] ?? []) {
        const key = item[attributes.key]?.S;
        if (key !== undefined) found.set(key, item);
      }
      keys = output.UnprocessedKeys?.[tableName]?.Keys ?? [];
    }
  }

  #key(storageKey: string): Item {
    return { [this.#s.attributes.key]: { S: storageKey } };
  }
}
