import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import KeyvDynamo from '@keyv/dynamo';
import { Cacheable } from 'cacheable';
import Keyv from 'keyv';
import { DynamoCache, type DynamoCacheOptions } from '../src/index.ts';
import { OriginalCacheService } from './baselines/original-cache-service.ts';
import type { DynamoTarget } from './support/dynamo-target.ts';
import { RequestMeter } from './support/request-meter.ts';

/** One way of caching a value in DynamoDB, as one execution environment uses it. */
export interface CacheContender {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttlSeconds: number): Promise<unknown>;
  /** `get`, and on a miss `load` then `set`: what a function does with a cache. */
  getOrSet(key: string, load: () => Promise<unknown>, ttlSeconds: number): Promise<unknown>;
  /** Frees the SDK clients. */
  close(): void;
}

/**
 * A contender: its name and a factory for environments (each with its own clients, memory and meter). Each
 * prefixes its keys its own way, so that contenders sharing the table never read each other's items.
 */
export interface ContenderKind {
  readonly name: string;
  create(target: DynamoTarget, meter: RequestMeter): CacheContender;
}

const quietLogger = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/** A contender from a get/set cache without its own get-or-set: get, and on a miss load and set. */
function withGetThenSet(cache: Pick<CacheContender, 'get' | 'set'>, close: () => void): CacheContender {
  return {
    ...cache,
    async getOrSet(key, load, ttlSeconds) {
      const cached = await cache.get(key);
      if (cached !== undefined && cached !== null) return cached;
      const value = await load();
      await cache.set(key, value, ttlSeconds);
      return value;
    },
    close,
  };
}

function meteredClient(target: DynamoTarget, meter: RequestMeter, config: ConstructorParameters<typeof DynamoDBClient>[0] = {}): DynamoDBClient {
  const client = new DynamoDBClient({ ...target.clientConfig, ...config });
  meter.attach(client);
  return client;
}

/** (a) The floor: one raw SDK GetItem or PutItem per operation, JSON text in one attribute, no checks. */
export const rawSdk: ContenderKind = {
  name: 'raw SDK GetItem/PutItem (floor)',
  create(target, meter) {
    const client = meteredClient(target, meter);
    const cache = {
      async get(key: string) {
        const output = await client.send(new GetItemCommand({ TableName: target.tableName, Key: { id: { S: `floor:${key}` } } }));
        return output.Item?.v?.S === undefined ? undefined : JSON.parse(output.Item.v.S);
      },
      async set(key: string, value: unknown, ttlSeconds: number) {
        await client.send(
          new PutItemCommand({
            TableName: target.tableName,
            Item: { id: { S: `floor:${key}` }, v: { S: JSON.stringify(value) }, expires_at: { N: String(Math.ceil(Date.now() / 1000 + ttlSeconds)) } },
          }),
        );
      },
    };
    return withGetThenSet(cache, () => client.destroy());
  },
};

/** (b) The faithful port of the original Python CacheService: strings only, so values travel as JSON text. */
export const originalService: ContenderKind = {
  name: 'original CacheService (port)',
  create(target, meter) {
    const client = meteredClient(target, meter);
    const service = new OriginalCacheService(client, target.tableName);
    const cache = {
      get: async (key: string) => {
        const text = await service.get(`orig:${key}`);
        return text === undefined ? undefined : JSON.parse(text);
      },
      set: (key: string, value: unknown, ttlSeconds: number) => service.set(`orig:${key}`, JSON.stringify(value), ttlSeconds),
    };
    return withGetThenSet(cache, () => client.destroy());
  },
};

function keyvStore(target: DynamoTarget, meter: RequestMeter): KeyvDynamo {
  const store = new KeyvDynamo({ ...target.clientConfig, tableName: target.tableName });
  meter.attach(store.client as unknown as DynamoDBClient);
  return store;
}

/** (c) keyv with @keyv/dynamo: a general key-value API over DynamoDB. */
export const keyvDynamo: ContenderKind = {
  name: 'keyv + @keyv/dynamo',
  create(target, meter) {
    const store = keyvStore(target, meter);
    const keyv = new Keyv({ store, namespace: 'keyv' });
    const cache = {
      get: (key: string) => keyv.get(key),
      set: (key: string, value: unknown, ttlSeconds: number) => keyv.set(key, value, ttlSeconds * 1000),
    };
    return withGetThenSet(cache, () => store.client.destroy());
  },
};

/** (c) cacheable: an in-memory primary in front of a @keyv/dynamo secondary. */
export const cacheableTiered: ContenderKind = {
  name: 'cacheable (memory + @keyv/dynamo)',
  create(target, meter) {
    const store = keyvStore(target, meter);
    const cacheable = new Cacheable({ primary: new Keyv(), secondary: new Keyv({ store, namespace: 'cacheable' }) });
    const cache = {
      get: (key: string) => cacheable.get(key),
      set: (key: string, value: unknown, ttlSeconds: number) => cacheable.set(key, value, ttlSeconds * 1000),
    };
    return withGetThenSet(cache, () => store.client.destroy());
  },
};

/** dynamo-cache with `options` in its own `namespace`; with `tagsOf`, each value stored with the tags it gives for its key. */
export function dynamoCacheKind(name: string, namespace: string, options: DynamoCacheOptions, tagsOf?: (key: string) => string[]): ContenderKind {
  return {
    name,
    create(target, meter) {
      const client = meteredClient(target, meter, { maxAttempts: 1 });
      const cache = new DynamoCache({ tableName: target.tableName, client, namespace, logger: quietLogger, ...options });
      return {
        get: (key) => cache.get(key),
        set: (key, value, ttlSeconds) => cache.set(key, value, { ttlSeconds, tags: tagsOf?.(key) }),
        getOrSet: (key, load, ttlSeconds) => cache.getOrSet(key, load, { ttlSeconds, tags: tagsOf?.(key) }),
        close: () => client.destroy(),
      };
    },
  };
}

/** (e) dynamo-cache with its defaults: memory tier, lease, compression. */
export const dynamoCacheDefault = dynamoCacheKind('dynamo-cache', 'dc', {});
/** (e) dynamo-cache without its memory tier: every read goes to DynamoDB. */
export const dynamoCacheNoMemory = dynamoCacheKind('dynamo-cache, no memory tier', 'dcnomem', { memory: false });
/** dynamo-cache without the cross-environment lease (for the stampede scenario). */
export const dynamoCacheNoLease = dynamoCacheKind('dynamo-cache, lease off', 'dcnolease', { lease: false });

/** The key-value contenders of the latency, capacity and scaling scenarios, floor first. */
export const KEY_VALUE_CONTENDERS: readonly ContenderKind[] = [rawSdk, originalService, keyvDynamo, cacheableTiered, dynamoCacheDefault, dynamoCacheNoMemory];

/** Powertools idempotency is a contender only where it applies: memoizing a handler's response. */
export const POWERTOOLS_NOTE = 'memoizes a handler (idempotency), has no key-value get/set API';
