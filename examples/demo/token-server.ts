import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local OAuth-style token endpoint on 127.0.0.1 that, like Cognito or any rate-limited upstream,
 * answers 429 above a fixed rate (a token bucket of `ratePerSecond`, burst of the same size).
 */
export class TokenServer {
  /** Requests answered 200 and 429. */
  readonly counts = { ok: 0, throttled: 0 };
  readonly #server: Server;
  readonly #ratePerSecond: number;
  readonly #latencyMs: number;
  #tokens: number;
  #lastRefill = performance.now();
  #issued = 0;

  private constructor(ratePerSecond: number, latencyMs: number) {
    this.#ratePerSecond = ratePerSecond;
    this.#latencyMs = latencyMs;
    this.#tokens = ratePerSecond;
    this.#server = createServer((_req, res) => {
      const allowed = this.#take();
      setTimeout(() => {
        if (!allowed) {
          this.counts.throttled += 1;
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"too_many_requests"}');
          return;
        }
        this.counts.ok += 1;
        this.#issued += 1;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `token-${this.#issued}`, token_type: 'Bearer' }));
      }, this.#latencyMs);
    });
  }

  static async start(ratePerSecond: number, latencyMs: number): Promise<TokenServer> {
    const server = new TokenServer(ratePerSecond, latencyMs);
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', () => resolve()));
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/oauth2/token`;
  }

  /** Resets the counters and refills the bucket, so each scenario starts from the same state. */
  reset(): void {
    this.counts.ok = 0;
    this.counts.throttled = 0;
    this.#tokens = this.#ratePerSecond;
    this.#lastRefill = performance.now();
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#ratePerSecond, this.#tokens + ((now - this.#lastRefill) / 1000) * this.#ratePerSecond);
    this.#lastRefill = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** An error carrying the upstream's HTTP status, as a client library would throw it. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly status: number;

  constructor(status: number) {
    super(`token endpoint answered ${status}`);
    this.status = status;
  }
}

/** `get_token_from_auth_server()`: one call to the token endpoint; throws `UpstreamError` on a 429. */
export async function fetchToken(url: string): Promise<string> {
  const response = await fetch(url, { method: 'POST' });
  if (!response.ok) {
    await response.body?.cancel();
    throw new UpstreamError(response.status);
  }
  const body = (await response.json()) as { access_token: string };
  return body.access_token;
}
