import { GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { awsCacheStatusOf, cacheAwsClient, type CachedCommandOptions } from '../src/aws-clients/cache-aws-client.ts';
import type { DynamoCache } from '../src/cache.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { expectPollingEndsAtAbort, useDynalite } from './support/fixtures.ts';
import { S3Server } from './support/s3-server.ts';

const db = useDynalite();
let s3: S3Server;

beforeAll(async () => {
  s3 = await S3Server.start();
});
afterAll(async () => {
  await s3?.close();
});
beforeEach(() => {
  s3.reset();
});

const encryption = { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' };

/** A real S3 client on a local endpoint. One attempt, so that a throttled call fails at once (the SDK's retries are not under test). */
function s3Client(endpoint = s3.endpoint): S3Client {
  return new S3Client({ ...localAwsConfig(endpoint), forcePathStyle: true, maxAttempts: 1 });
}

/** One simulated execution environment: its own cache (on a shared table) and its own cached S3 client. */
async function environment(tableName: string, commands: Record<string, CachedCommandOptions>, options: DynamoCacheOptions & { endpoint?: string } = {}) {
  const { endpoint, ...cacheOptions } = options;
  const { cache, logger } = await db.newCache({ tableName, ...cacheOptions });
  return { cache, logger, client: cacheAwsClient(s3Client(endpoint), { cache, commands }) };
}

const getObject = { GetObjectCommand: { ttlSeconds: 60 } };

describe('cacheAwsClient with the real S3 client', () => {
  it('a hit skips S3 and answers the output as the SDK returned it: headers, Dates, metadata and body', async () => {
    s3.put('bucket', 'config/app.json', '{"feature":true}', { contentType: 'application/json', metadata: { owner: 'ada' } });
    const { client } = await environment(await db.newTable(), getObject);
    const first = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'config/app.json' }));
    const second = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'config/app.json' }));
    expect(s3.counts.GET).toBe(1);
    expect(awsCacheStatusOf(first)).toBe('miss');
    expect(awsCacheStatusOf(second)).toBe('hit');
    expect(second.LastModified).toBeInstanceOf(Date);
    expect(second.LastModified!.getTime()).toBe(first.LastModified!.getTime());
    expect({ ...second, Body: undefined, $metadata: undefined }).toEqual({ ...first, Body: undefined, $metadata: undefined });
    expect(second).toMatchObject({ ETag: first.ETag, ContentType: 'application/json', ContentLength: 16, Metadata: { owner: 'ada' } });
    expect(second.$metadata).toMatchObject({ httpStatusCode: 200, requestId: first.$metadata.requestId, cache: 'hit' });
    expect(await first.Body!.transformToString()).toBe('{"feature":true}');
    expect(await second.Body!.transformToString()).toBe('{"feature":true}');
  });

  it('another execution environment finds the output in DynamoDB without calling S3', async () => {
    s3.put('bucket', 'shared.txt', 'shared by the fleet');
    const tableName = await db.newTable();
    const a = await environment(tableName, getObject);
    const b = await environment(tableName, getObject);
    await (await a.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'shared.txt' }))).Body!.transformToString();
    const fromB = await b.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'shared.txt' }));
    expect(await fromB.Body!.transformToString()).toBe('shared by the fleet');
    expect(s3.counts.GET).toBe(1);
    expect(b.cache.stats()).toMatchObject({ dynamoHits: 1, misses: 0 });
  });

  it('50 environments missing one object at once call S3 once, and all get the object', async () => {
    const body = randomBytes(50_000);
    s3.put('bucket', 'hot/object.bin', body);
    const tableName = await db.newTable();
    const fleet = await Promise.all(Array.from({ length: 50 }, () => environment(tableName, getObject)));
    const outputs = await Promise.all(fleet.map(({ client }) => client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'hot/object.bin' }))));
    expect(s3.counts.GET).toBe(1);
    for (const output of outputs) expect(Buffer.from(await output.Body!.transformToByteArray()).equals(body)).toBe(true);
    expect(outputs.filter((output) => awsCacheStatusOf(output) === 'miss')).toHaveLength(1);
  });

  it('stale-if-error: on SlowDown the stale object is answered within staleIfErrorSeconds, and the error after it', async () => {
    s3.put('bucket', 'report.csv', 'a,b\n1,2\n');
    const { client } = await environment(await db.newTable(), { GetObjectCommand: { ttlSeconds: 0.3, staleIfErrorSeconds: 1 } }, { memory: false });
    await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'report.csv' }));
    await sleep(400); // past the TTL, within the stale-if-error window
    s3.setOutage({ code: 'SlowDown', status: 503 });
    const stale = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'report.csv' }));
    expect(awsCacheStatusOf(stale)).toBe('stale');
    expect(await stale.Body!.transformToString()).toBe('a,b\n1,2\n');
    expect(s3.counts.throttled).toBe(1); // S3 was asked, and throttled
    await sleep(1000); // past the window
    await expect(client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'report.csv' }))).rejects.toMatchObject({ name: 'SlowDown' });
  });

  it('other errors propagate unchanged, even within staleIfErrorSeconds, and are not cached', async () => {
    s3.put('bucket', 'private.txt', 'v1');
    const { client } = await environment(await db.newTable(), { GetObjectCommand: { ttlSeconds: 0.2, staleIfErrorSeconds: 60 } }, { memory: false });
    await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'private.txt' }));
    await sleep(300);
    s3.setOutage({ code: 'AccessDenied', status: 403 });
    const denied = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'private.txt' })).catch((error: unknown) => error);
    expect(denied).toBeInstanceOf(S3ServiceException);
    expect(denied).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    s3.setOutage(undefined);
    s3.put('bucket', 'private.txt', 'v2');
    const after = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'private.txt' }));
    expect(await after.Body!.transformToString()).toBe('v2');
    expect(s3.counts.GET).toBe(3);
  });

  it.each([
    ['AccessDenied', 403],
    ['NoSuchKey', 404],
  ])('nor does another environment waiting on that refresh get the stale object: it sees %s too', async (code, status) => {
    const slow = await S3Server.start({ latencyMs: 400 });
    try {
      slow.put('bucket', 'payroll.csv', 'alice,100000');
      const tableName = await db.newTable();
      const commands = { GetObjectCommand: { ttlSeconds: 0.2, staleIfErrorSeconds: 3600 } };
      const a = await environment(tableName, commands, { memory: false, endpoint: slow.endpoint });
      const b = await environment(tableName, commands, { memory: false, endpoint: slow.endpoint });
      await (await a.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'payroll.csv' }))).Body!.transformToString();
      await sleep(300); // stale, within staleIfErrorSeconds
      slow.setOutage({ code, status }); // access revoked, or the object deleted
      const refresh = a.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'payroll.csv' })).catch((e: unknown) => e);
      await vi.waitFor(() => expect(a.cache.stats().leaseWins).toBe(1));
      const waiter = await b.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'payroll.csv' })).catch((e: unknown) => e);
      expect(b.cache.stats().leaseWaits).toBe(1);
      expect(await refresh).toMatchObject({ name: code });
      expect(waiter instanceof Error ? waiter.name : `answered ${awsCacheStatusOf(waiter as never)}`).toBe(code);
    } finally {
      await slow.close();
    }
  });

  it('a body round-trips exactly, text and binary, from 1 byte to 2 MB, from memory and from DynamoDB', async () => {
    const tableName = await db.newTable();
    const writer = await environment(tableName, getObject);
    const reader = await environment(tableName, getObject);
    for (const size of [1, 1000, 64 * 1024, 450 * 1024, 2 * 1024 * 1024]) {
      const binary = randomBytes(size);
      const text = 'é€😀abc\n'.repeat(Math.ceil(size / 13)).slice(0, size);
      s3.put('bucket', `bin-${size}`, binary);
      s3.put('bucket', `txt-${size}`, text, { contentType: 'text/plain; charset=utf-8' });
      for (const client of [writer.client, writer.client, reader.client]) {
        const bin = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: `bin-${size}` }));
        expect(Buffer.from(await bin.Body!.transformToByteArray()).equals(binary)).toBe(true);
        const txt = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: `txt-${size}` }));
        expect(await txt.Body!.transformToString()).toBe(text);
      }
    }
    expect(s3.counts.GET).toBe(10); // each object once: the rest were hits
  });

  it('each transform of a body works once, as on the SDK own stream; the web stream reads the whole body', async () => {
    s3.put('bucket', 'once.txt', 'read me once');
    const { client } = await environment(await db.newTable(), getObject);
    const plain = s3Client();
    const uncached = await plain.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'once.txt' }));
    await uncached.Body!.transformToString();
    const sdkError = await uncached.Body!.transformToByteArray().catch((error: Error) => error.message);
    expect(sdkError).toMatch(/already been transformed/);
    for (const status of ['miss', 'hit']) {
      const output = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'once.txt' }));
      expect(awsCacheStatusOf(output)).toBe(status);
      expect(await output.Body!.transformToString()).toBe('read me once');
      await expect(output.Body!.transformToByteArray()).rejects.toThrow(sdkError);
      await expect(output.Body!.transformToString()).rejects.toThrow(sdkError);
      expect(() => output.Body!.transformToWebStream()).toThrow(sdkError);
    }
    const web = (await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'once.txt' }))).Body!.transformToWebStream();
    expect(await new Response(web as ReadableStream).text()).toBe('read me once');
  });

  it('conditional reads always go to S3: 304 and 412 are never cached, a 200 is not stored for them', async () => {
    s3.put('bucket', 'etagged.txt', 'content');
    const { client } = await environment(await db.newTable(), getObject);
    const { ETag } = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'etagged.txt' }));
    for (let i = 0; i < 2; i += 1) {
      await expect(client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'etagged.txt', IfNoneMatch: ETag }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 304 } });
      await expect(client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'etagged.txt', IfMatch: '"other"' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });
      const modified = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'etagged.txt', IfModifiedSince: new Date(0) }));
      expect(awsCacheStatusOf(modified)).toBe('bypass');
      expect(await modified.Body!.transformToString()).toBe('content');
    }
    expect(s3.counts.GET).toBe(7);
  });

  it('a Range is part of the key: each range is cached on its own and answers its own bytes', async () => {
    s3.put('bucket', 'ranged.bin', Buffer.from('0123456789'));
    const { client } = await environment(await db.newTable(), getObject);
    const read = async (Range: string) => {
      const output = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'ranged.bin', Range }));
      return { status: awsCacheStatusOf(output), text: await output.Body!.transformToString(), contentRange: output.ContentRange };
    };
    expect(await read('bytes=0-3')).toEqual({ status: 'miss', text: '0123', contentRange: 'bytes 0-3/10' });
    expect(await read('bytes=4-')).toEqual({ status: 'miss', text: '456789', contentRange: 'bytes 4-9/10' });
    expect(await read('bytes=0-3')).toEqual({ status: 'hit', text: '0123', contentRange: 'bytes 0-3/10' });
    expect(s3.counts.GET).toBe(2);
  });

  it('NoSuchKey and NotFound propagate and are not cached by default; with negativeTtlSeconds the same errors are thrown from the cache', async () => {
    const plainEnv = await environment(await db.newTable(), { GetObjectCommand: { ttlSeconds: 60 }, HeadObjectCommand: { ttlSeconds: 60 } });
    for (let i = 0; i < 2; i += 1) await expect(plainEnv.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'missing' }))).rejects.toBeInstanceOf(NoSuchKey);
    expect(s3.counts.GET).toBe(2);

    s3.reset();
    const negative = { ttlSeconds: 60, negativeTtlSeconds: 60 };
    const { client } = await environment(await db.newTable(), { GetObjectCommand: negative, HeadObjectCommand: negative });
    const errors: unknown[] = [];
    for (let i = 0; i < 3; i += 1) {
      errors.push(await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'missing' })).catch((error: unknown) => error));
      errors.push(await client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'missing' })).catch((error: unknown) => error));
    }
    expect(s3.reads).toBe(2);
    const [liveGet, liveHead, cachedGet, cachedHead] = errors as Error[];
    expect(cachedGet).toBeInstanceOf(NoSuchKey);
    expect(cachedHead).toBeInstanceOf(NotFound);
    expect(cachedGet).toMatchObject({ name: 'NoSuchKey', message: liveGet!.message, $fault: 'client', $metadata: { httpStatusCode: 404, cache: 'hit' } });
    expect(cachedHead).toMatchObject({ name: liveHead!.name, $metadata: { httpStatusCode: 404, cache: 'hit' } });
    // Once the object exists, the negative entry lasts its TTL: that is what negativeTtlSeconds buys.
    s3.put('bucket', 'missing', 'now here');
    await expect(client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'missing' }))).rejects.toBeInstanceOf(NoSuchKey);
  });

  it('commands not listed pass through untouched: every call reaches S3 and the output is the SDK own', async () => {
    const { client } = await environment(await db.newTable(), getObject);
    const plain = s3Client();
    for (let i = 0; i < 2; i += 1) {
      const put = await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'written.txt', Body: `v${i}` }));
      expect(awsCacheStatusOf(put)).toBeUndefined();
      const head = await client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'written.txt' }));
      const reference = await plain.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'written.txt' }));
      expect(Object.keys(head).sort()).toEqual(Object.keys(reference).sort());
      expect({ ...head, $metadata: { ...head.$metadata, requestId: '', extendedRequestId: '' } }).toEqual({
        ...reference,
        $metadata: { ...reference.$metadata, requestId: '', extendedRequestId: '' },
      });
    }
    expect(s3.counts).toMatchObject({ PUT: 2, HEAD: 4 });
  });

  it('a body above maxBodyBytes passes through whole and uncached, and the fleet does not queue behind the lease for it', async () => {
    const big = randomBytes(5000);
    s3.put('bucket', 'big.bin', big);
    const tableName = await db.newTable();
    const commands = { GetObjectCommand: { ttlSeconds: 60, maxBodyBytes: 1000 } };
    const fleet = await Promise.all(Array.from({ length: 5 }, () => environment(tableName, commands)));
    const first = await fleet[0]!.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'big.bin' }));
    expect(Buffer.from(await first.Body!.transformToByteArray()).equals(big)).toBe(true);
    const started = performance.now();
    const rest = await Promise.all(fleet.map(({ client }) => client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'big.bin' }))));
    for (const output of rest) {
      expect(awsCacheStatusOf(output)).toBe('bypass');
      expect(Buffer.from(await output.Body!.transformToByteArray()).equals(big)).toBe(true);
    }
    expect(s3.counts.GET).toBe(6);
    // Nobody waited for a lease: the cache told every environment to go to S3 directly.
    expect(fleet.reduce((sum, { cache }) => sum + cache.stats().leaseWaits, 0)).toBe(0);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('an SSE-C read (a customer key in the input) is not cached in clear; with encryption it is', async () => {
    s3.put('bucket', 'sse-c.txt', 'customer-encrypted');
    const input = { Bucket: 'bucket', Key: 'sse-c.txt', SSECustomerAlgorithm: 'AES256', SSECustomerKey: randomBytes(32).toString('base64') };
    const clear = await environment(await db.newTable(), getObject);
    for (let i = 0; i < 2; i += 1) expect(awsCacheStatusOf(await clear.client.send(new GetObjectCommand(input)))).toBe('bypass');
    expect(clear.logger.warnings.filter((w) => /SSECustomerKey/.test(w.message))).toHaveLength(1);
    expect(clear.cache.stats().secretsNotStored).toBe(2);
    expect(s3.counts.GET).toBe(2);
    const encrypted = await environment(await db.newTable(), getObject, { encryption });
    const statuses = [];
    for (let i = 0; i < 2; i += 1) statuses.push(awsCacheStatusOf(await encrypted.client.send(new GetObjectCommand(input))));
    expect(statuses).toEqual(['miss', 'hit']);
    expect(s3.counts.GET).toBe(3);
  });

  it('an object encrypted with a KMS key (SSEKMSKeyId, marked sensitive by the SDK) is not cached in clear; other objects are', async () => {
    const kmsKeyId = 'arn:aws:kms:us-east-1:123456789012:key/0000-1111';
    s3.put('bucket', 'kms.txt', 'kms-encrypted', { kmsKeyId });
    s3.put('bucket', 'plain.txt', 'plain');
    const { client, logger } = await environment(await db.newTable(), getObject);
    const statuses: (string | undefined)[] = [];
    for (const Key of ['kms.txt', 'kms.txt', 'plain.txt', 'plain.txt']) {
      const output = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key }));
      statuses.push(awsCacheStatusOf(output));
      if (Key === 'kms.txt') expect(output).toMatchObject({ SSEKMSKeyId: kmsKeyId, ServerSideEncryption: 'aws:kms' });
    }
    expect(statuses).toEqual(['bypass', 'bypass', 'miss', 'hit']);
    expect(logger.warnings.filter((w) => /output carries SSEKMSKeyId/.test(w.message))).toHaveLength(1);
    expect(s3.counts.GET).toBe(3);
  });

  it("a caller's abortSignal ends the wait for another environment's refresh, and an aborted call never reaches S3", async () => {
    const slow = await S3Server.start({ latencyMs: 1500 });
    try {
      slow.put('bucket', 'slow.txt', 'slow');
      const tableName = await db.newTable();
      const a = await environment(tableName, getObject, { endpoint: slow.endpoint });
      const b = await environment(tableName, getObject, { endpoint: slow.endpoint });
      const holder = a.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'slow.txt' }));
      await sleep(200); // a holds the lease and waits for S3
      const started = performance.now();
      await expect(b.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'slow.txt' }), { abortSignal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'AbortError' });
      expect(performance.now() - started).toBeLessThan(1000);
      const controller = new AbortController();
      controller.abort();
      await expect(b.client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'other.txt' }), { abortSignal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
      expect(await (await holder).Body!.transformToString()).toBe('slow');
      expect(slow.counts.GET).toBe(1);
    } finally {
      await slow.close();
    }
  });

  it("after the caller's abortSignal fires, the cache stops too: no more DynamoDB polling for the other environment's refresh", async () => {
    const slow = await S3Server.start({ latencyMs: 3000 });
    const proxy = await FaultProxy.start(db.endpoint); // counts b's DynamoDB requests
    try {
      slow.put('bucket', 'slow.txt', 'slow');
      const tableName = await db.newTable();
      const a = cacheAwsClient(s3Client(slow.endpoint), { cache: (await db.newCache({ tableName })).cache, commands: getObject });
      const b = cacheAwsClient(s3Client(slow.endpoint), { cache: (await db.newCache({ tableName, endpoint: proxy.endpoint })).cache, commands: getObject });
      await expectPollingEndsAtAbort(
        proxy,
        () => a.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'slow.txt' })),
        (signal) => b.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'slow.txt' }), { abortSignal: signal }),
      );
    } finally {
      await proxy.close();
      await slow.close();
    }
  });

  it('applying cacheAwsClient again replaces the configuration instead of stacking a second cache', async () => {
    s3.put('bucket', 'twice.txt', 'x');
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName });
    const client = cacheAwsClient(s3Client(), { cache, commands: { HeadObjectCommand: { ttlSeconds: 60 } } });
    expect(cacheAwsClient(client, { cache, commands: getObject })).toBe(client);
    await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'twice.txt' }));
    await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'twice.txt' }));
    await client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'twice.txt' }));
    await client.send(new HeadObjectCommand({ Bucket: 'bucket', Key: 'twice.txt' }));
    expect(s3.counts).toMatchObject({ GET: 1, HEAD: 2 });
    expect((cache as DynamoCache).stats()).toMatchObject({ hits: 1, misses: 1 });
  });
});

describe('what is shared with whom: the endpoint and the principal are in the key', () => {
  /** A real S3 client with no endpoint of its own: the SDK finds it in the environment or the profile. */
  const configuredClient = () => new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, forcePathStyle: true, maxAttempts: 1 });

  it.each<[string, (endpoint: string) => Record<string, string>]>([
    ['AWS_ENDPOINT_URL_S3', (endpoint) => ({ AWS_ENDPOINT_URL_S3: endpoint })],
    ['AWS_ENDPOINT_URL', (endpoint) => ({ AWS_ENDPOINT_URL: endpoint })],
    ["a profile's endpoint_url", (endpoint) => {
      const file = join(mkdtempSync(join(tmpdir(), 'dynamo-cache-aws-config-')), 'config');
      writeFileSync(file, `[profile other-s3]\nendpoint_url = ${endpoint}\n`);
      return { AWS_CONFIG_FILE: file, AWS_PROFILE: 'other-s3' };
    }],
  ])('two S3-compatible endpoints never share an object: one from AWS_ENDPOINT_URL_S3, the other from %s', async (_source, configure) => {
    const other = await S3Server.start();
    /** A client of the endpoint the environment names (the SDK reads it at each call). */
    const readConfig = async (env: Record<string, string>) => {
      for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
      try {
        const { cache } = await db.newCache({ tableName });
        const client = cacheAwsClient(configuredClient(), { cache, commands: getObject });
        const output = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'config.json' }));
        return [await output.Body!.transformToString(), awsCacheStatusOf(output)];
      } finally {
        vi.unstubAllEnvs();
      }
    };
    const tableName = await db.newTable();
    try {
      s3.put('bucket', 'config.json', '{"from":"the first endpoint"}');
      other.put('bucket', 'config.json', '{"from":"the other endpoint"}');
      expect(await readConfig({ AWS_ENDPOINT_URL_S3: s3.endpoint })).toEqual(['{"from":"the first endpoint"}', 'miss']);
      expect(await readConfig(configure(other.endpoint))).toEqual(['{"from":"the other endpoint"}', 'miss']);
      expect([s3.counts.GET, other.counts.GET]).toEqual([1, 1]);
      // Each endpoint's own object is then a hit, for each of them.
      expect(await readConfig({ AWS_ENDPOINT_URL_S3: s3.endpoint })).toEqual(['{"from":"the first endpoint"}', 'hit']);
      expect(await readConfig(configure(other.endpoint))).toEqual(['{"from":"the other endpoint"}', 'hit']);
    } finally {
      await other.close();
    }
  });

  /** A tenant's client: temporary credentials of that tenant's role, as an STS AssumeRole per tenant hands out. */
  const tenantClient = (accessKeyId: string) =>
    new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId, secretAccessKey: 'secret', sessionToken: `session-of-${accessKeyId}` } });

  it.each([
    ['derived from their credentials', undefined, undefined],
    ['with a principal label each', 'tenant-a', 'tenant-b'],
  ])('two per-tenant clients on one cache never share an output the other could not obtain (%s)', async (_how, labelA, labelB) => {
    s3.restrictAccess({ 'ASIA-TENANT-A': ['tenant-a'], 'ASIA-TENANT-B': ['tenant-b'] });
    s3.put('tenant-a', 'report.csv', 'revenue of tenant A');
    const { cache, logger } = await db.newCache();
    const a = cacheAwsClient(tenantClient('ASIA-TENANT-A'), { cache, commands: getObject, ...(labelA === undefined ? {} : { principal: labelA }) });
    const b = cacheAwsClient(tenantClient('ASIA-TENANT-B'), { cache, commands: getObject, ...(labelB === undefined ? {} : { principal: labelB }) });
    expect(await (await a.send(new GetObjectCommand({ Bucket: 'tenant-a', Key: 'report.csv' }))).Body!.transformToString()).toBe('revenue of tenant A');
    const denied = await b.send(new GetObjectCommand({ Bucket: 'tenant-a', Key: 'report.csv' })).catch((error: unknown) => error);
    expect(denied).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(s3.counts.GET).toBe(2);
    expect(awsCacheStatusOf(await a.send(new GetObjectCommand({ Bucket: 'tenant-a', Key: 'report.csv' })))).toBe('hit');
    // Without a label, outputs are shared only within one session of temporary credentials: a warning says how to share them.
    const hint = logger.warnings.filter((w) => /shared only by callers with the same credentials .*set cacheAwsClient's principal option/.test(w.message));
    expect(hint).toHaveLength(labelA === undefined ? 2 : 0);
  });

  it("a principal label shares one tenant's outputs across environments, whatever session credentials each has", async () => {
    s3.restrictAccess({ 'ASIA-A-ENV-1': ['tenant-a'], 'ASIA-A-ENV-2': ['tenant-a'] });
    s3.put('tenant-a', 'report.csv', 'revenue of tenant A');
    const tableName = await db.newTable();
    const environments = await Promise.all(['ASIA-A-ENV-1', 'ASIA-A-ENV-2'].map(async (accessKeyId) => cacheAwsClient(tenantClient(accessKeyId), { cache: (await db.newCache({ tableName })).cache, principal: 'tenant-a', commands: getObject })));
    const statuses = [];
    for (const client of environments) statuses.push(awsCacheStatusOf(await client.send(new GetObjectCommand({ Bucket: 'tenant-a', Key: 'report.csv' }))));
    expect(statuses).toEqual(['miss', 'hit']);
    expect(s3.counts.GET).toBe(1);
  });

  it("the fleet shares one function's outputs across environments, each with its own temporary credentials for the function's role; another function does not", async () => {
    s3.restrictAccess({ 'ASIA-ENV-1': ['bucket'], 'ASIA-ENV-2': ['bucket'], 'ASIA-OTHER-FUNCTION': ['bucket'] });
    s3.put('bucket', 'templates/invoice.html', '<h1>Invoice</h1>');
    const tableName = await db.newTable();
    /** One Lambda execution environment: the runtime puts its role's credentials in the environment; the client takes them from there. */
    const lambdaEnvironment = async (functionName: string, accessKeyId: string) => {
      for (const [name, value] of Object.entries({ AWS_LAMBDA_FUNCTION_NAME: functionName, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: `token-of-${accessKeyId}` })) vi.stubEnv(name, value);
      const { cache, logger } = await db.newCache({ tableName });
      const client = cacheAwsClient(new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1 }), { cache, commands: getObject });
      const output = await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'templates/invoice.html' }));
      expect(await output.Body!.transformToString()).toBe('<h1>Invoice</h1>');
      expect(logger.warnings).toEqual([]);
      return awsCacheStatusOf(output);
    };
    try {
      expect(await lambdaEnvironment('orders', 'ASIA-ENV-1')).toBe('miss');
      expect(await lambdaEnvironment('orders', 'ASIA-ENV-2')).toBe('hit');
      expect(await lambdaEnvironment('billing', 'ASIA-OTHER-FUNCTION')).toBe('miss');
      expect(s3.counts.GET).toBe(2);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('shareAcrossPrincipals: an object every tenant may read is fetched once for all of them', async () => {
    s3.restrictAccess({ 'ASIA-TENANT-A': ['public-assets'], 'ASIA-TENANT-B': ['public-assets'] });
    s3.put('public-assets', 'logo.svg', '<svg/>');
    const { cache } = await db.newCache();
    const commands = { GetObjectCommand: { ttlSeconds: 60, shareAcrossPrincipals: true } };
    const statuses = [];
    for (const accessKeyId of ['ASIA-TENANT-A', 'ASIA-TENANT-B']) {
      const client = cacheAwsClient(tenantClient(accessKeyId), { cache, commands });
      statuses.push(awsCacheStatusOf(await client.send(new GetObjectCommand({ Bucket: 'public-assets', Key: 'logo.svg' }))));
    }
    expect(statuses).toEqual(['miss', 'hit']);
    expect(s3.counts.GET).toBe(1);
  });
});

describe('cacheAwsClient invalidate', () => {
  const config = () => new GetObjectCommand({ Bucket: 'bucket', Key: 'config.json' });

  it('after 500 concurrent callers found the cached object outdated, the fleet reads it from S3 once', async () => {
    s3.put('bucket', 'config.json', 'v1');
    const tableName = await db.newTable();
    // As with the 401 storm of clientCredentialsToken: leases that outlast this loaded process's slowness.
    const envs = await Promise.all(Array.from({ length: 50 }, () => environment(tableName, getObject, { lease: { ttlMs: 30_000, waitMs: 20_000 } })));
    await Promise.all(envs.map(async ({ client }) => (await client.send(config())).Body!.transformToString()));
    expect(s3.counts.GET).toBe(1);
    s3.put('bucket', 'config.json', 'v2'); // changed behind the cache's back
    const reader = async (client: (typeof envs)[number]['client']): Promise<string> => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        const output = await client.send(config());
        const text = await output.Body!.transformToString();
        if (text === 'v2') return text;
        await client.invalidate(config(), output); // this answer is outdated
      }
      throw new Error('answered the outdated object again');
    };
    const texts = await Promise.all(envs.flatMap(({ client }) => Array.from({ length: 10 }, () => reader(client))));
    expect(texts).toEqual(Array(500).fill('v2'));
    expect(s3.counts.GET).toBe(2);
  });

  it('without the rejected output, ends whatever is cached for the call; S3 is not called by it', async () => {
    s3.put('bucket', 'config.json', 'v1');
    const tableName = await db.newTable();
    const a = await environment(tableName, getObject);
    const b = await environment(tableName, getObject);
    await (await a.client.send(config())).Body!.transformToString();
    s3.put('bucket', 'config.json', 'v2');
    expect(await b.client.invalidate(config())).toBe(true); // b never read it: the call's key is the same
    expect(s3.calls).toBe(1);
    expect(await b.client.invalidate(config())).toBe(false); // nothing left to end
    // Another environment's next call reads S3 (a's memory tier keeps v1 for memory.ttlSeconds at most).
    const c = await environment(tableName, getObject);
    expect(await (await c.client.send(config())).Body!.transformToString()).toBe('v2');
    expect(s3.counts.GET).toBe(2);
  });

  it('refuses a command the client does not cache; an output not answered from the cache ends nothing', async () => {
    s3.put('bucket', 'config.json', 'v1');
    const { client } = await environment(await db.newTable(), getObject);
    await expect(client.invalidate(new HeadObjectCommand({ Bucket: 'bucket', Key: 'config.json' }))).rejects.toThrow(/HeadObjectCommand is not cached by this client \(cached: GetObjectCommand\)/);
    await client.send(config());
    expect(await client.invalidate(config(), { $metadata: {} })).toBe(false);
    expect(await client.invalidate(config())).toBe(true);
    expect(s3.calls).toBe(1);
  });
});

