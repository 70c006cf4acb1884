import { describe, expect, it } from 'vitest';
import type { CacheEntry } from '../src/storage/entry.ts';
import { MemoryTier, RECHECK_SPREAD } from '../src/storage/memory-tier.ts';

const NOW = 1_000_000;
const tier = (ttlSeconds = 30) => new MemoryTier({ maxEntries: 100, maxBytes: 1 << 20, ttlSeconds });
const entry = (freshMs: number, expiresMs = freshMs): CacheEntry => ({ payload: { kind: 'json', data: '1' }, freshUntilMs: NOW + freshMs, expiresAtMs: NOW + expiresMs });

describe('memory tier: rechecks spread, entries kept past their freshness', () => {
  it('a fleet that stores a value at one moment rechecks it at moments spread over the last tenth of its freshness', () => {
    const rechecks = Array.from({ length: 200 }, () => {
      const memory = tier();
      memory.set('k', entry(5000), 0, NOW);
      return memory.held('k', 0, NOW)!;
    });
    for (const held of rechecks) {
      expect(held.recheckAtMs).toBeGreaterThan(NOW + 5000 * (1 - RECHECK_SPREAD));
      expect(held.recheckAtMs).toBeLessThanOrEqual(NOW + 5000);
      expect(held.ahead).toBe(true); // the last recheck before the value ends: where it is refreshed ahead
    }
    const times = rechecks.map((held) => held.recheckAtMs);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(5000 * RECHECK_SPREAD * 0.8); // spread, not one moment
  });

  it("a long-lived value is rechecked within the tier's TTL (less up to a tenth), not ahead of its expiry", () => {
    const memory = tier(30);
    memory.set('k', entry(3_600_000), 0, NOW);
    const held = memory.held('k', 0, NOW)!;
    expect(held.recheckAtMs).toBeGreaterThan(NOW + 27_000);
    expect(held.recheckAtMs).toBeLessThanOrEqual(NOW + 30_000);
    expect(held.ahead).toBe(false);
  });

  it('answers a fresh entry until its recheck; keeps it past the recheck and past its freshness, until its storage expiry', () => {
    const memory = tier();
    memory.set('k', entry(5000, 65_000), 0, NOW); // a 60 s stale window
    const { recheckAtMs } = memory.held('k', 0, NOW)!;
    expect(memory.get('k', 0, recheckAtMs - 1)).toBeDefined();
    expect(memory.get('k', 0, recheckAtMs)).toBeUndefined(); // due: DynamoDB is asked
    expect(memory.held('k', 0, NOW + 30_000)?.entry.freshUntilMs).toBe(NOW + 5000); // stale, kept as a fallback
    expect(memory.held('k', 0, NOW + 65_000)).toBeUndefined();
  });

  it('a recheck put off (defer) is counted, bounded by the storage expiry, and reset by the next value stored', () => {
    const memory = tier();
    memory.set('k', entry(5000, 65_000), 0, NOW);
    memory.defer('k', NOW + 6000, 'failing');
    memory.defer('k', NOW + 999_999, 'failing');
    expect(memory.held('k', 0, NOW + 5500)).toMatchObject({ deferred: 'failing', deferrals: 2, recheckAtMs: NOW + 65_000 });
    expect(memory.get('k', 0, NOW + 5500)).toBeUndefined(); // stale: only the refresh coordinator answers it
    memory.set('k', entry(9000), 0, NOW + 5500);
    expect(memory.held('k', 0, NOW + 5500)?.deferrals).toBe(0);
    expect(memory.held('k', 0, NOW + 5500)?.deferred).toBeUndefined();
  });

  it('an entry of another namespace generation is neither answered nor held', () => {
    const memory = tier();
    memory.set('k', entry(5000), 1, NOW);
    expect(memory.get('k', 2, NOW)).toBeUndefined();
    expect(memory.held('k', 2, NOW)).toBeUndefined();
  });

  it('an entry stored before any generation was known is answered only while none is (a flush may have come in between)', () => {
    const memory = tier();
    memory.set('k', entry(5000), undefined, NOW);
    expect(memory.get('k', undefined, NOW)).toBeDefined();
    expect(memory.held('k', undefined, NOW)).toBeDefined();
    expect(memory.held('k', 0, NOW)).toBeUndefined();
    memory.set('k', entry(5000), undefined, NOW);
    expect(memory.get('k', 3, NOW)).toBeUndefined();
    memory.set('k', entry(5000), 3, NOW);
    expect(memory.get('k', undefined, NOW)).toBeUndefined();
  });
});
