import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiter } from './rate-limiter.ts';

/** Settings shared by the local upstreams. */
export interface LocalUpstreamOptions {
  /** Requests per second answered before the upstream throttles (a token bucket). Default: no limit. */
  ratePerSecond?: number;
  /** Delay before every answer, in ms. Default `0`. */
  latencyMs?: number;
}

/**
 * A stand-in for an AWS or OAuth upstream on 127.0.0.1 (a random port): reads each request's body, then
 * answers it after `latencyMs`. It can throttle above `ratePerSecond`, and tests can force the next answers
 * (`injectNext`) or all of them (`setOutage`) to be a fault the subclass knows how to answer.
 */
export abstract class LocalUpstream<TFault> {
  readonly #server: Server;
  readonly #limiter: RateLimiter | undefined;
  #faults: TFault[] = [];
  #outage: TFault | undefined;

  protected constructor(options: LocalUpstreamOptions) {
    this.#limiter = options.ratePerSecond === undefined ? undefined : new RateLimiter(options.ratePerSecond);
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => setTimeout(() => this.answer(req, Buffer.concat(chunks), res), options.latencyMs ?? 0));
    });
  }

  /** Listens on a random 127.0.0.1 port. */
  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    return this;
  }

  /** `http://127.0.0.1:<port>`. */
  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Answers the next `count` requests with `fault`. */
  injectNext(count: number, fault: TFault): void {
    for (let i = 0; i < count; i += 1) this.#faults.push(fault);
  }

  /** Answers every request with `fault` until called with `undefined`. */
  setOutage(fault: TFault | undefined): void {
    this.#outage = fault;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** What the next request gets instead of an answer: `'throttled'` above the rate, a forced fault, or nothing. */
  protected takeFault(): 'throttled' | TFault | undefined {
    if (this.#limiter !== undefined && !this.#limiter.take()) return 'throttled';
    return this.#faults.shift() ?? this.#outage;
  }

  /** Forgets the forced faults and the outage, and refills the rate limit. */
  protected resetFaults(): void {
    this.#faults = [];
    this.#outage = undefined;
    this.#limiter?.reset();
  }

  /** Answers one request, whose body has been read. */
  protected abstract answer(req: IncomingMessage, body: Buffer, res: ServerResponse): void;
}

/** The access key id a request is signed with (its SigV4 `Credential`), or `''` for an unsigned request. */
export function signingKeyIdOf(req: IncomingMessage): string {
  return /Credential=([^/,]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? '';
}
