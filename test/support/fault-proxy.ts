import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** DynamoDB throttling error names the proxy can answer with. */
export type ThrottleError = 'ThrottlingException' | 'ProvisionedThroughputExceededException' | 'RequestLimitExceeded';

/**
 * Faults to inject. Rates are probabilities from 0 to 1, drawn per request; `next*` counts fail exactly
 * that many following requests. Faults apply to the operations in `operations` (all when absent).
 */
export interface Faults {
  /** Answer 400 with a DynamoDB throttling error body. */
  throttleRate?: number;
  /** Which throttling error. Default `ProvisionedThroughputExceededException`. */
  throttleError?: ThrottleError;
  /** Answer 500 InternalServerError. */
  serverErrorRate?: number;
  /** Answer 503 ServiceUnavailable. */
  unavailableRate?: number;
  /** Answer 400 ValidationException (a client error: not retried, does not open the circuit). */
  validationErrorRate?: number;
  /** Close the connection without answering. */
  dropRate?: number;
  /** Delay every answer by this many ms (the request reaches DynamoDB only after the delay). */
  latencyMs?: number;
  /** Forward at once, then hold DynamoDB's answer this many ms: the request is applied even if the client gives up. */
  responseDelayMs?: number;
  /** Throttle exactly the next N matching requests, then pass. */
  throttleNext?: number;
  /**
   * BatchWriteItem and BatchGetItem: leave each item (key) of a request unprocessed with this probability, as
   * DynamoDB does at capacity. The rest reach DynamoDB; the answer lists the others in `UnprocessedItems`
   * (`UnprocessedKeys`), for the client to send again.
   */
  unprocessedRate?: number;
  /** Restrict faults to these operations (`GetItem`, `PutItem`, ...). */
  operations?: readonly string[];
}

/** What a model of DynamoDB in the proxy (see `PartitionModel`) decides for one request that passed the faults. */
export type ModelDecision =
  /** Answer after `delayMs`, without DynamoDB (a throttle, as DynamoDB answers it). */
  | { readonly answer: { readonly status: number; readonly body: string }; readonly delayMs?: number }
  /** Forward `body` after `delayMs`; `settle`, when given, reads DynamoDB's answer and returns the one to send. */
  | { readonly forward: Buffer; readonly delayMs?: number; readonly settle?: (status: number, body: Buffer) => Buffer };

/** A model the proxy consults for every request (after its faults): capacity, latency, replication. */
export interface RequestModel {
  decide(operation: string, body: Buffer): ModelDecision;
}

/**
 * An HTTP proxy in front of a DynamoDB endpoint that injects DynamoDB-shaped faults, so the real SDK's
 * error parsing, abort and connection handling run. Counts requests per operation. A {@link RequestModel}
 * (`setModel`) can stand between it and DynamoDB: the partition model, a replicating Region.
 */
export class FaultProxy {
  /** Requests seen, by DynamoDB operation (`GetItem`...), faulted ones included. */
  readonly requests = new Map<string, number>();
  /** Faults injected, by kind. */
  readonly injected = new Map<string, number>();
  #faults: Faults = {};
  #model: RequestModel | undefined;
  readonly #server: Server;
  readonly #target: () => string;
  readonly #agent = new Agent({ keepAlive: true });

  /** A proxy forwarding to `target()` (read when forwarding, so it may be known only later); `listen` starts it. */
  constructor(target: () => string) {
    this.#target = target;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  /** Starts a proxy on a random 127.0.0.1 port forwarding to `target`. */
  static start(target: string): Promise<FaultProxy> {
    return new FaultProxy(() => target).listen();
  }

  /** Listens on a random 127.0.0.1 port. */
  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    return this;
  }

  /** The proxy's endpoint URL, to give the SDK client. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Replaces the current faults (`{}` heals everything). */
  setFaults(faults: Faults): void {
    this.#faults = { ...faults };
  }

  /** Puts `model` between the proxy and DynamoDB (`undefined`: none). */
  setModel(model: RequestModel | undefined): void {
    this.#model = model;
  }

  /**
   * Starts `call` with a fresh signal, aborts it once 150 ms of its requests went through this proxy, and
   * counts the requests that still arrive in the second after the call settled (a caller that gave up
   * should leave nothing behind polling).
   */
  async requestsAfterAbort(call: (signal: AbortSignal) => Promise<unknown>): Promise<{ before: number; outcome: unknown; after: number }> {
    const controller = new AbortController();
    const settled = call(controller.signal).catch((error: unknown) => error);
    await sleep(150);
    const before = this.count();
    controller.abort();
    const outcome = await settled;
    await sleep(100);
    const atAbort = this.count();
    await sleep(1000);
    return { before, outcome, after: this.count() - atAbort };
  }

  /** Requests seen for `operation`, or in total. */
  count(operation?: string): number {
    if (operation !== undefined) return this.requests.get(operation) ?? 0;
    let total = 0;
    for (const n of this.requests.values()) total += n;
    return total;
  }

  resetCounts(): void {
    this.requests.clear();
    this.injected.clear();
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A client that closes its connection before the answer has given up on the request (cancelled it).
    res.on('close', () => {
      if (!res.writableFinished) this.#count('abandoned');
    });
    const body = await readBody(req);
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? 'unknown';
    this.requests.set(operation, (this.requests.get(operation) ?? 0) + 1);
    const faults = this.#faults;
    const applies = faults.operations === undefined || faults.operations.includes(operation);
    if (applies && faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    if (res.destroyed || req.socket.destroyed) return;
    if (applies) {
      if (faults.unprocessedRate && (operation === 'BatchWriteItem' || operation === 'BatchGetItem')) return this.#partly(req, res, body, operation, faults.unprocessedRate);
      if (faults.throttleNext !== undefined && faults.throttleNext > 0) {
        faults.throttleNext -= 1;
        return this.#throttle(res, faults.throttleError);
      }
      if (hit(faults.dropRate)) {
        this.#count('drop');
        req.socket.destroy();
        return;
      }
      if (hit(faults.throttleRate)) return this.#throttle(res, faults.throttleError);
      if (hit(faults.validationErrorRate)) {
        return this.#fail(res, 400, 'validation', 'com.amazon.coral.validate#ValidationException', 'One or more parameter values were invalid');
      }
      if (hit(faults.serverErrorRate)) {
        return this.#fail(res, 500, 'server-error', 'com.amazonaws.dynamodb.v20120810#InternalServerError', 'Internal server error');
      }
      if (hit(faults.unavailableRate)) {
        return this.#fail(res, 503, 'unavailable', 'com.amazon.coral.availability#ServiceUnavailableException', 'Service unavailable');
      }
    }
    const decision = this.#model?.decide(operation, body);
    if (decision?.delayMs) await sleep(decision.delayMs);
    if (res.destroyed || req.socket.destroyed) return;
    if (decision !== undefined && 'answer' in decision) return this.#send(res, decision.answer.status, decision.answer.body);
    this.#forward(req, res, decision?.forward ?? body, applies ? faults.responseDelayMs : undefined, decision?.settle);
  }

  /** Sends DynamoDB part of a batch request and answers the rest as unprocessed, in DynamoDB's shape. */
  async #partly(req: IncomingMessage, res: ServerResponse, body: Buffer, operation: 'BatchWriteItem' | 'BatchGetItem', rate: number): Promise<void> {
    const input = JSON.parse(body.toString()) as { RequestItems: Record<string, unknown> };
    const sent: Record<string, unknown> = {};
    const left: Record<string, unknown> = {};
    let leftCount = 0;
    for (const [table, requests] of Object.entries(input.RequestItems)) {
      const items = operation === 'BatchWriteItem' ? (requests as unknown[]) : (requests as { Keys: unknown[] }).Keys;
      const kept = items.filter(() => !hit(rate));
      const unprocessed = items.filter((item) => !kept.includes(item));
      leftCount += unprocessed.length;
      const asRequests = (list: unknown[]) => (operation === 'BatchWriteItem' ? list : { ...(requests as object), Keys: list });
      if (kept.length > 0) sent[table] = asRequests(kept);
      if (unprocessed.length > 0) left[table] = asRequests(unprocessed);
    }
    for (let n = 0; n < leftCount; n++) this.#count('unprocessed');
    const unprocessedName = operation === 'BatchWriteItem' ? 'UnprocessedItems' : 'UnprocessedKeys';
    let output: Record<string, unknown> = operation === 'BatchWriteItem' ? {} : { Responses: {} };
    if (Object.keys(sent).length > 0) {
      const forwarded = Buffer.from(JSON.stringify({ ...input, RequestItems: sent }));
      const answer = await this.#exchange(req, forwarded).catch(() => undefined);
      if (answer === undefined) {
        res.destroy();
        return;
      }
      if (answer.status !== 200) {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
        return;
      }
      output = JSON.parse(answer.body.toString()) as Record<string, unknown>;
    }
    const merged = Buffer.from(JSON.stringify({ ...output, [unprocessedName]: { ...(output[unprocessedName] as object | undefined), ...left } }));
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': merged.byteLength, 'x-amz-crc32': String(crc32(merged)), 'x-amzn-requestid': 'fault-proxy' });
    res.end(merged);
  }

  /** Sends `body` to DynamoDB with `req`'s headers, and reads the whole answer. */
  #exchange(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const target = new URL(this.#target());
    return new Promise((resolve, reject) => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(body.byteLength) }, agent: this.#agent },
        (answer) => {
          readBody(answer).then((data) => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: data }), reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  #throttle(res: ServerResponse, error: ThrottleError = 'ProvisionedThroughputExceededException'): void {
    this.#fail(res, 400, 'throttle', `com.amazonaws.dynamodb.v20120810#${error}`, 'The level of configured provisioned throughput for the table was exceeded.');
  }

  #fail(res: ServerResponse, status: number, kind: string, type: string, message: string): void {
    this.#count(kind);
    this.#send(res, status, JSON.stringify({ __type: type, message }));
  }

  #send(res: ServerResponse, status: number, payload: string): void {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(payload), 'x-amzn-requestid': 'fault-proxy' });
    res.end(payload);
  }

  #forward(req: IncomingMessage, res: ServerResponse, body: Buffer, responseDelayMs?: number, settle?: (status: number, body: Buffer) => Buffer): void {
    const target = new URL(this.#target());
    const headers = { ...req.headers, 'content-length': String(body.byteLength) };
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: this.#agent }, (upstreamRes) => {
      const answer = async () => {
        if (settle === undefined) {
          if (res.destroyed) return upstreamRes.resume();
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          return upstreamRes.pipe(res);
        }
        // The model reads the whole answer (and may rewrite it: UnprocessedKeys), so its checksum is DynamoDB's again.
        const status = upstreamRes.statusCode ?? 502;
        const settled = settle(status, await readBody(upstreamRes));
        if (res.destroyed) return;
        const { 'transfer-encoding': _chunked, ...kept } = upstreamRes.headers;
        res.writeHead(status, { ...kept, 'content-length': String(settled.byteLength), 'x-amz-crc32': String(crc32(settled)) });
        res.end(settled);
      };
      // An answer the model cannot read ends the connection (the client sees a network error), never the process.
      const answered = () => answer().catch(() => res.destroy());
      if (responseDelayMs) setTimeout(() => void answered(), responseDelayMs);
      else void answered();
    });
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  }

  #count(kind: string): void {
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
  }
}

function hit(rate: number | undefined): boolean {
  return rate !== undefined && rate > 0 && Math.random() < rate;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
