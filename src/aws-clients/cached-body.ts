import { Readable } from 'node:stream';

/**
 * The SDK's own stream mixin (`sdkStreamMixin` of `@smithy/core`), as a client that returns streaming bodies
 * carries it in `client.config.sdkStreamMixin`: it adds `transformToString`, `transformToByteArray` and
 * `transformToWebStream` to a Node.js `Readable`, each usable once. Taken from the client, so a cached body
 * behaves exactly as that client's own bodies, whichever copy of the SDK it comes from.
 */
export type StreamMixin = (stream: Readable) => unknown;

/** The stream mixin of a client's resolved config, when it has one. */
export function streamMixinOf(config: unknown): StreamMixin | undefined {
  const mixin = (config as { sdkStreamMixin?: unknown } | undefined)?.sdkStreamMixin;
  return typeof mixin === 'function' ? (mixin as StreamMixin) : undefined;
}

/** Whether an output member is a streaming body as the SDK returns them (S3 `GetObject`'s `Body`). */
export function isStreamingBody(value: unknown): boolean {
  return value !== null && typeof value === 'object' && typeof (value as { transformToByteArray?: unknown }).transformToByteArray === 'function';
}

/** A streaming body holding `bytes`, as the SDK would return it: a fresh `Readable` with the SDK's transforms. */
export function bodyOf(bytes: Uint8Array, mixin: StreamMixin): unknown {
  const chunks = bytes.byteLength === 0 ? [] : [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)];
  return mixin(Readable.from(chunks, { objectMode: false }));
}

/** What {@link readBody} read: all the bytes, or a body that still holds all of them because there were too many. */
export type BodyRead = { readonly complete: true; readonly bytes: Uint8Array } | { readonly complete: false; readonly body: unknown };

/**
 * Reads a streaming body into memory, up to `maxBytes`. A larger body is not read further: the answer is a
 * body that replays what was read, then streams the rest, so the caller still gets the whole object. A body
 * that cannot be read piecewise (not async-iterable) is handed back untouched.
 */
export async function readBody(body: unknown, maxBytes: number, mixin: StreamMixin): Promise<BodyRead> {
  const iterate = (body as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator];
  if (typeof iterate !== 'function') return { complete: false, body };
  const iterator = iterate.call(body);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { complete: true, bytes: Buffer.concat(chunks, size) };
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > maxBytes) break;
  }
  async function* replay(): AsyncGenerator<Uint8Array> {
    yield* chunks;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  return { complete: false, body: mixin(Readable.from(replay(), { objectMode: false })) };
}
