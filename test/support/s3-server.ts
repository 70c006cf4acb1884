import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LocalUpstream, signingKeyIdOf, type LocalUpstreamOptions } from './local-upstream.ts';

/** An object the server holds. */
interface StoredObject {
  readonly body: Buffer;
  readonly etag: string;
  readonly lastModified: Date;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  readonly kmsKeyId: string | undefined;
}

/** A forced error answer: S3 error code and HTTP status. */
export interface S3Fault {
  readonly code: string;
  readonly status: number;
}

/**
 * A local S3-compatible endpoint on 127.0.0.1, path-style (`forcePathStyle: true`), for the real S3 client:
 * `PutObject`, `GetObject` (with `Range`, `If-None-Match`, `If-Match`, `If-Modified-Since`) and `HeadObject`,
 * answering S3's own headers and XML errors (`NoSuchKey`, `NotModified`, `PreconditionFailed`). Like S3 above
 * its per-prefix request rate, it answers `503 SlowDown` above `ratePerSecond`; tests can also force errors, and
 * restrict each access key to some buckets, as IAM policies do (`restrictAccess`).
 */
export class S3Server extends LocalUpstream<S3Fault> {
  /** Requests received, by method, and answers by outcome. */
  readonly counts = { GET: 0, HEAD: 0, PUT: 0, other: 0, ok: 0, throttled: 0, failed: 0 };
  readonly #objects = new Map<string, StoredObject>();
  /** Buckets each access key id may read and write, when access is restricted. */
  #grants: ReadonlyMap<string, readonly string[]> | undefined;
  #requestIds = 0;

  /** Starts a server on a random 127.0.0.1 port; above `ratePerSecond` it answers `503 SlowDown`. */
  static start(options: LocalUpstreamOptions = {}): Promise<S3Server> {
    return new S3Server(options).listen();
  }

  /** The endpoint, to give the S3 client (with `forcePathStyle: true`). */
  get endpoint(): string {
    return this.origin;
  }

  /** Object requests received (GET and HEAD). */
  get reads(): number {
    return this.counts.GET + this.counts.HEAD;
  }

  /** Requests received, of any kind. */
  get calls(): number {
    return this.reads + this.counts.PUT + this.counts.other;
  }

  /** Requests answered `503 SlowDown` because of the rate limit or a forced fault. */
  get throttled(): number {
    return this.counts.throttled;
  }

  /** Stores an object directly. */
  put(bucket: string, key: string, body: string | Uint8Array, options: { contentType?: string; metadata?: Record<string, string>; lastModified?: Date; kmsKeyId?: string } = {}): void {
    const bytes = Buffer.from(body);
    this.#objects.set(`${bucket}/${key}`, {
      body: bytes,
      etag: `"${createHash('md5').update(bytes).digest('hex')}"`,
      // HTTP dates have whole seconds.
      lastModified: new Date(Math.floor((options.lastModified ?? new Date()).getTime() / 1000) * 1000),
      contentType: options.contentType ?? 'application/octet-stream',
      metadata: options.metadata ?? {},
      kmsKeyId: options.kmsKeyId,
    });
  }

  /**
   * Restricts access as IAM policies would: each access key id (the one in the request's SigV4 `Credential`)
   * may use the buckets listed for it, and gets `403 AccessDenied` for any other. `undefined`: no restriction.
   */
  restrictAccess(grants: Record<string, readonly string[]> | undefined): void {
    this.#grants = grants === undefined ? undefined : new Map(Object.entries(grants));
  }

  /** Resets the counters, faults, rate limit and access restriction. */
  reset(): void {
    for (const name of Object.keys(this.counts) as (keyof S3Server['counts'])[]) this.counts[name] = 0;
    this.resetFaults();
    this.#grants = undefined;
  }

  protected answer(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD' || method === 'PUT') this.counts[method] += 1;
    else this.counts.other += 1;
    const requestId = `req-${++this.#requestIds}`;
    const headers = { 'x-amz-request-id': requestId, 'x-amz-id-2': `host-${requestId}` };
    const url = new URL(req.url ?? '/', 'http://localhost');
    const objectKey = decodeURIComponent(url.pathname.slice(1));
    const error = (code: string, status: number, message: string) => {
      if (code === 'SlowDown') this.counts.throttled += 1;
      else this.counts.failed += 1;
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId><HostId>host-${requestId}</HostId></Error>`;
      // HEAD answers carry no body: the SDK names the error after the status.
      res.writeHead(status, { ...headers, 'content-type': 'application/xml' }).end(method === 'HEAD' || status === 304 ? undefined : xml);
    };
    const fault = this.takeFault();
    if (fault === 'throttled') return error('SlowDown', 503, 'Please reduce your request rate.');
    if (fault !== undefined) return error(fault.code, fault.status, `Injected ${fault.code}`);
    const [bucket = '', ...key] = objectKey.split('/');
    const accessKeyId = signingKeyIdOf(req);
    if (this.#grants !== undefined && !(this.#grants.get(accessKeyId) ?? []).includes(bucket)) return error('AccessDenied', 403, 'Access Denied');
    if (method === 'PUT') {
      const metadata = Object.fromEntries(Object.entries(req.headers).flatMap(([name, value]) => (name.startsWith('x-amz-meta-') ? [[name.slice(11), String(value)]] : [])));
      this.put(bucket, key.join('/'), body, { contentType: req.headers['content-type'] ?? 'application/octet-stream', metadata });
      this.counts.ok += 1;
      res.writeHead(200, { ...headers, etag: this.#objects.get(objectKey)!.etag }).end();
      return;
    }
    const object = this.#objects.get(objectKey);
    if (object === undefined) return error('NoSuchKey', 404, 'The specified key does not exist.');
    const ifNoneMatch = req.headers['if-none-match'];
    const ifModifiedSince = req.headers['if-modified-since'];
    if (req.headers['if-match'] !== undefined && req.headers['if-match'] !== object.etag) return error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
    if ((ifNoneMatch !== undefined && ifNoneMatch === object.etag) || (ifNoneMatch === undefined && ifModifiedSince !== undefined && object.lastModified <= new Date(ifModifiedSince))) {
      return error('NotModified', 304, 'Not Modified');
    }
    let content = object.body;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const objectHeaders: Record<string, string> = {
      ...headers,
      etag: object.etag,
      'last-modified': object.lastModified.toUTCString(),
      'content-type': object.contentType,
      'accept-ranges': 'bytes',
      ...Object.fromEntries(Object.entries(object.metadata).map(([name, value]) => [`x-amz-meta-${name}`, value])),
      ...(object.kmsKeyId === undefined ? {} : { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': object.kmsKeyId }),
    };
    if (range !== null) {
      const start = Number(range[1]);
      const end = range[2] === '' ? object.body.byteLength - 1 : Math.min(Number(range[2]), object.body.byteLength - 1);
      content = object.body.subarray(start, end + 1);
      status = 206;
      objectHeaders['content-range'] = `bytes ${start}-${end}/${object.body.byteLength}`;
    }
    this.counts.ok += 1;
    res.writeHead(status, { ...objectHeaders, 'content-length': String(content.byteLength) }).end(method === 'HEAD' ? undefined : content);
  }
}
