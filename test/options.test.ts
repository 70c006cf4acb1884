import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const logger = new RecordingLogger();
const saved = { table: process.env.DYNAMO_CACHE_TABLE, namespace: process.env.DYNAMO_CACHE_NAMESPACE };

afterEach(() => {
  for (const [name, value] of [['DYNAMO_CACHE_TABLE', saved.table], ['DYNAMO_CACHE_NAMESPACE', saved.namespace]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('options', () => {
  it('requires a table name, from the option or DYNAMO_CACHE_TABLE', () => {
    delete process.env.DYNAMO_CACHE_TABLE;
    expect(() => new DynamoCache({ logger })).toThrow(new InvalidOptionsError('tableName is required: pass it as an option or set DYNAMO_CACHE_TABLE'));
    process.env.DYNAMO_CACHE_TABLE = 'from-env';
    expect(new DynamoCache({ logger }).tableName).toBe('from-env');
    expect(new DynamoCache({ logger, tableName: 'explicit' }).tableName).toBe('explicit');
  });

  it('reads the namespace from DYNAMO_CACHE_NAMESPACE unless given', () => {
    process.env.DYNAMO_CACHE_NAMESPACE = 'svc-a';
    expect(new DynamoCache({ logger, tableName: 'tbl' }).namespace).toBe('svc-a');
    expect(new DynamoCache({ logger, tableName: 'tbl', namespace: 'svc-b' }).namespace).toBe('svc-b');
    delete process.env.DYNAMO_CACHE_NAMESPACE;
    expect(new DynamoCache({ logger, tableName: 'tbl' }).namespace).toBe('');
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a short table name', { tableName: 'ab' }, /tableName must be 3-255/],
    ['a table name with spaces', { tableName: 'my table' }, /tableName must be/],
    ['a namespace with a colon', { namespace: 'a:b' }, /namespace must be/],
    ['a namespace of the wrong type', { namespace: 7 }, /namespace must be a string/],
    ['a non-finite default TTL', { defaultTtlSeconds: Number.POSITIVE_INFINITY }, /defaultTtlSeconds must be a finite number/],
    ['a zero timeout', { timeoutMs: 0 }, /timeoutMs must be an integer of 1 or more/],
    ['a fractional timeout', { timeoutMs: 1.5 }, /timeoutMs must be an integer/],
    ['zero retry attempts', { retry: { maxAttempts: 0 } }, /retry.maxAttempts/],
    ['a negative backoff', { retry: { baseDelayMs: -1 } }, /retry.baseDelayMs must be zero or more/],
    ['a zero memory size', { memory: { maxEntries: 0 } }, /memory.maxEntries/],
    ['a zero memory TTL', { memory: { ttlSeconds: 0 } }, /memory.ttlSeconds must be more than zero/],
    ['a non-boolean consistentRead', { consistentRead: 'yes' }, /consistentRead must be true or false/],
    ['a client without send', { client: {} }, /client must be a DynamoDBClient/],
    ['an attribute named dc_*', { attributes: { value: 'dc_value' } }, /attributes.value/],
    ['two attributes with one name', { attributes: { value: 'id' } }, /three different names/],
    ['a logger without warn', { logger: { debug() {}, info() {}, error() {} } }, /logger must have a warn/],
    ['a breaker with no threshold', { breaker: { consecutiveFailures: 0 } }, /breaker.consecutiveFailures/],
  ])('refuses %s with InvalidOptionsError', (_name, options, message) => {
    const build = () => new DynamoCache({ tableName: 'tbl', logger, ...options } as never);
    expect(build).toThrow(InvalidOptionsError);
    expect(build).toThrow(message);
  });

  it('reuses a given client and leaves the breaker and memory tier optional', () => {
    const client = new DynamoDBClient({ region: 'us-east-1' });
    const cache = new DynamoCache({ tableName: 'tbl', client, logger, breaker: false, memory: false });
    expect(cache.stats()).toMatchObject({ circuit: 'disabled', memoryEntries: 0 });
  });

  it('defaults: namespace empty, breaker closed, counters at zero', () => {
    delete process.env.DYNAMO_CACHE_NAMESPACE;
    const cache = new DynamoCache({ tableName: 'tbl', logger });
    expect(cache.namespace).toBe('');
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 0, errors: 0, circuit: 'closed' });
  });
});
