import { S3Client } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readBody, streamMixinOf, type StreamMixin } from '../src/aws-clients/cached-body.ts';
import { decodeRecord, encodeRecord, type CachedRecord } from '../src/aws-clients/cached-output.ts';
import { requestKey, type RequestScope } from '../src/aws-clients/request-key.ts';
import { STORED_STYLE, UnencodableValueError, fromTaggedJson, toTaggedJson, type Json } from '../src/aws-clients/tagged-json.ts';
import { encodeValue } from '../src/codec/value-codec.ts';

/** Plain data as SDK inputs and outputs hold it: Dates, bytes, non-finite numbers, and keys that look like tags. */
const sdkData: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.double(),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('$t', 'v', '__proto__', '$metadata')), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const scope: RequestScope = { clientName: 'S3Client', region: 'eu-west-1', endpoint: 'https://s3.eu-west-1.amazonaws.com/', principal: 'function:eu-west-1:orders', commandName: 'GetObjectCommand' };

describe('tagged JSON', () => {
  it('round-trips SDK data exactly through JSON text and the cache value checks', () => {
    fc.assert(
      fc.property(sdkData, (value) => {
        const tagged = toTaggedJson(value, STORED_STYLE);
        encodeValue(tagged); // the cache accepts it as it is
        const back = fromTaggedJson(JSON.parse(JSON.stringify(tagged)) as Json);
        expect(back).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses what is not plain data', () => {
    for (const value of [new Map(), () => 1, Symbol('s'), 1n, new Date(Number.NaN), Readable.from([]), [undefined]]) {
      expect(() => toTaggedJson(value, STORED_STYLE)).toThrow(UnencodableValueError);
    }
    expect(toTaggedJson({ a: undefined, b: 1 }, STORED_STYLE)).toEqual({ b: 1 });
  });
});

describe('request keys', () => {
  it('are canonical: the same input in any key order gives the same key', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), sdkData, { maxKeys: 6 }), (input) => {
        const reversed = Object.fromEntries(Object.entries(input).reverse());
        expect(requestKey(scope, reversed)).toBe(requestKey(scope, input));
      }),
      { numRuns: 300 },
    );
  });

  it('are injective in practice: different inputs, clients, regions, endpoints, principals or commands give different keys', () => {
    fc.assert(
      fc.property(sdkData, sdkData, (a, b) => {
        const canonical = (value: unknown) => JSON.stringify(toTaggedJson(value, { ...STORED_STYLE, sortKeys: true }));
        fc.pre(canonical(a) !== canonical(b));
        expect(requestKey(scope, { x: a })).not.toBe(requestKey(scope, { x: b }));
      }),
      { numRuns: 300 },
    );
    const input = { Bucket: 'b', Key: 'k' };
    const keys = [
      requestKey(scope, input),
      requestKey({ ...scope, region: 'us-east-1' }, input),
      requestKey({ ...scope, clientName: 'OtherClient' }, input),
      requestKey({ ...scope, commandName: 'HeadObjectCommand' }, input),
      requestKey({ ...scope, endpoint: 'http://127.0.0.1:9000' }, input),
      requestKey({ ...scope, principal: 'label:tenant-a' }, input),
      requestKey({ ...scope, principal: 'label:tenant-b' }, input),
      requestKey(scope, { Bucket: 'b', Key: 'k', Range: 'bytes=0-1' }),
      requestKey(scope, { Bucket: 'b', Key: new Date(0).toISOString() }),
      requestKey(scope, { Bucket: 'b', Key: new Date(0) }),
      requestKey(scope, input, 'custom'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('hold no input in clear, binary members only as a hash, and name what they cache', () => {
    const token = 'eyJraWQiOiJ-access-token';
    const key = requestKey({ ...scope, clientName: 'CognitoIdentityProviderClient', commandName: 'GetUserCommand' }, { AccessToken: token, Blob: randomBytes(16) });
    expect(key).toMatch(/^aws\/CognitoIdentityProviderClient\/eu-west-1\/GetUserCommand\/[A-Za-z0-9_-]{43}$/);
    expect(key).not.toContain('eyJ');
    expect(requestKey(scope, { B: new Uint8Array([1]) })).not.toBe(requestKey(scope, { B: new Uint8Array([2]) }));
    expect(requestKey(scope, {}, 'user-42')).toBe(requestKey(scope, { ignored: true }, 'user-42'));
  });
});

describe('cached records', () => {
  it('round-trip an output with and without a body, a negative entry and a bypass', () => {
    const output = { $metadata: { httpStatusCode: 200, requestId: 'r' }, LastModified: new Date(1_700_000_000_000), Metadata: { $t: 'user-defined' }, ContentLength: 3 };
    const records: CachedRecord[] = [
      { kind: 'output', output },
      { kind: 'output', output, body: { member: 'Body', bytes: new Uint8Array([0, 255, 7]) } },
      { kind: 'output', output, body: { member: 'Body', bytes: new Uint8Array() } },
      { kind: 'error', error: { name: 'NoSuchKey', message: 'gone', fault: 'client', httpStatusCode: 404, requestId: undefined } },
      { kind: 'bypass', reason: 'secret' },
    ];
    for (const record of records) {
      const decoded = decodeRecord(structuredClone(encodeRecord(record)));
      expect(decoded).toEqual(record.kind === 'error' ? { kind: 'error', error: { name: 'NoSuchKey', message: 'gone', fault: 'client', httpStatusCode: 404 } } : record);
    }
  });

  it('refuse anything else', () => {
    for (const value of ['text', null, { v: 2, output: {} }, { v: 1 }, Buffer.from([0, 0, 0, 2, 123, 125])]) expect(() => decodeRecord(value)).toThrow();
  });
});

describe('reading a body into memory', () => {
  const mixin = streamMixinOf(new S3Client({ region: 'us-east-1' }).config) as StreamMixin;
  const streamOf = (chunks: Buffer[]) => mixin(Readable.from(chunks, { objectMode: false }));

  it("takes the client's own SDK stream mixin", () => {
    expect(typeof mixin).toBe('function');
    expect(streamMixinOf({})).toBeUndefined();
  });

  it('reads a body up to maxBytes in full', async () => {
    const chunks = [randomBytes(300), randomBytes(300)];
    const read = await readBody(streamOf(chunks), 600, mixin);
    expect(read.complete && Buffer.from(read.bytes).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('stops above maxBytes and hands back a body that still streams every byte, transformable once', async () => {
    const chunks = Array.from({ length: 10 }, () => randomBytes(1000));
    const read = await readBody(streamOf(chunks), 2500, mixin);
    expect(read.complete).toBe(false);
    const body = (read as { body: { transformToByteArray(): Promise<Uint8Array> } }).body;
    expect(Buffer.from(await body.transformToByteArray()).equals(Buffer.concat(chunks))).toBe(true);
    await expect(body.transformToByteArray()).rejects.toThrow(/already been transformed/);
  });

  it('hands a body that cannot be read piecewise back untouched', async () => {
    const opaque = { transformToByteArray: async () => new Uint8Array() };
    expect(await readBody(opaque, 10, mixin)).toEqual({ complete: false, body: opaque });
  });
});
