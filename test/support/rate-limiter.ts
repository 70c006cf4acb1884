/**
 * A token bucket of `ratePerSecond` with a burst of the same size: what a rate-limited upstream (Cognito, S3's
 * per-prefix limit, an OAuth server) allows before it throttles.
 */
export class RateLimiter {
  readonly #ratePerSecond: number;
  #tokens: number;
  #lastRefill = performance.now();

  constructor(ratePerSecond: number) {
    this.#ratePerSecond = ratePerSecond;
    this.#tokens = ratePerSecond;
  }

  /** Takes one request's token: `false` when the request is above the rate. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#ratePerSecond, this.#tokens + ((now - this.#lastRefill) / 1000) * this.#ratePerSecond);
    this.#lastRefill = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Refills the bucket. */
  reset(): void {
    this.#tokens = this.#ratePerSecond;
    this.#lastRefill = performance.now();
  }
}
