/**
 * Expiry arithmetic, the counterpart of the original service's `set_ttl` and `has_expired`.
 *
 * The expiry attribute holds whole epoch seconds, the format DynamoDB's TTL documents. A positive TTL is
 * rounded up (an item never expires early); a TTL of zero or less is rounded down, so the item is already
 * expired when written. Reads accept fractional seconds too, as the original service writes them.
 */

/** Epoch seconds at which an item written at `nowMs` with `ttlSeconds` expires. */
export function expiresAtSeconds(ttlSeconds: number, nowMs: number = Date.now()): number {
  const exact = nowMs / 1000 + ttlSeconds;
  return ttlSeconds > 0 ? Math.ceil(exact) : Math.floor(exact);
}

/** Whether an item with expiry `expiresAt` (epoch seconds, fractional allowed) has expired at `nowMs`. */
export function hasExpired(expiresAt: number, nowMs: number = Date.now()): boolean {
  return nowMs >= expiresAt * 1000;
}
