import { describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const logger = new RecordingLogger();
const cache = new DynamoCache({ tableName: 'tbl', logger, clientConfig: { region: 'us-east-1' } });

/** The error a call throws (sync or async), to check its type and message. */
async function errorOf(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('misspelled options are errors with a suggestion, not silently ignored', () => {
  it.each<[string, () => unknown, RegExp]>([
    ['new DynamoCache({ ttl })', () => new DynamoCache({ tableName: 'tbl', logger, ttl: 60 } as never), /Unknown option "ttl" in the DynamoCache options; did you mean "defaultTtlSeconds"\?/],
    ['new DynamoCache({ defaultTTLSeconds })', () => new DynamoCache({ tableName: 'tbl', logger, defaultTTLSeconds: 60 } as never), /"defaultTTLSeconds".*did you mean "defaultTtlSeconds"/],
    ['memory: { maxEntry }', () => new DynamoCache({ tableName: 'tbl', logger, memory: { maxEntry: 10 } } as never), /"maxEntry" in memory; did you mean "maxEntries"/],
    ['lease: { ttl }', () => new DynamoCache({ tableName: 'tbl', logger, lease: { ttl: 10 } } as never), /"ttl" in lease; did you mean "ttlMs"/],
    ['retry: { attempts }', () => new DynamoCache({ tableName: 'tbl', logger, retry: { attempts: 2 } } as never), /"attempts" in retry; did you mean "maxAttempts"/],
    ['encryption: { writeKey }', () => new DynamoCache({ tableName: 'tbl', logger, encryption: { keys: {}, writeKey: 'k' } } as never), /"writeKey" in encryption; did you mean "writeKeyId"/],
    ['compression: { threshold }', () => new DynamoCache({ tableName: 'tbl', logger, compression: { threshold: 1 } } as never), /did you mean "thresholdBytes"/],
    ['attributes: { expiry }', () => new DynamoCache({ tableName: 'tbl', logger, attributes: { expiry: 'x' } } as never), /"expiry" in attributes; did you mean "expiresAt"/],
    ['a name with no near match', () => new DynamoCache({ tableName: 'tbl', logger, zzz: 1 } as never), /Unknown option "zzz".*known options: tableName, client/],
    ['set(k, v, { ttl })', () => cache.set('k', 1, { ttl: 5 } as never), /Unknown option "ttl" in set\(\) options; did you mean "ttlSeconds"/],
    ['get(k, { consistent })', () => cache.get('k', { consistentRead: true } as never), /in get\(\) options/],
    ['getOrSet(k, f, { ttl })', () => cache.getOrSet('k', () => 1, { ttl: 5 } as never), /in getOrSet\(\) options; did you mean "ttlSeconds"/],
    ['acquire(k, { staleWhileRevalidate })', () => cache.acquire('k', { staleWhileRevalidate: 5 } as never), /did you mean "staleWhileRevalidateSeconds"/],
    ['wrap(fn, { keyOf })', () => cache.wrap(async function load() {}, { keyOf: () => 'k' } as never), /in wrap\(\); did you mean "key"/],
    ['getMany(keys, { timeout })', () => cache.getMany(['k'], { timeout: 5 } as never), /in getMany\(\) options/],
    ['delete(k, { force })', () => cache.delete('k', { force: true } as never), /Unknown option "force" in delete\(\) options/],
  ])('%s', async (_name, run, message) => {
    const error = await errorOf(run);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toMatch(message);
  });

  it('a bad signal or deadline is an InvalidOptionsError', async () => {
    expect(await errorOf(() => cache.get('k', { signal: {} as AbortSignal }))).toBeInstanceOf(InvalidOptionsError);
    expect(await errorOf(() => cache.get('k', { deadline: Number.NaN }))).toBeInstanceOf(InvalidOptionsError);
    expect(await errorOf(() => cache.get('k', { deadline: {} as never }))).toBeInstanceOf(InvalidOptionsError);
  });
});
