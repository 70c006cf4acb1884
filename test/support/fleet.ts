import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoCache, GetOrSetOptions } from '../../src/cache.ts';
import type { CacheStats } from '../../src/observability/stats.ts';

/** The upstream a fleet protects: counts its calls, takes `latencyMs`, and answers 429 while told to. */
export class FleetUpstream {
  calls = 0;
  /** Calls answered 429. */
  refused = 0;
  #failingUntil = 0;
  readonly #latencyMs: number;
  readonly #value: () => unknown;

  constructor(options: { latencyMs?: number; value?: () => unknown } = {}) {
    this.#latencyMs = options.latencyMs ?? 20;
    this.#value = options.value ?? (() => ({ token: `token-${this.calls}`, at: Date.now() }));
  }

  /** Answers 429 to every call for the next `ms`. */
  refuseFor(ms: number): void {
    this.#failingUntil = Date.now() + ms;
  }

  /** Answers 429 to every call for `ms` from its `call`th call (a storm that comes after the first fill, however slow that was). */
  refuseFrom(call: number, ms: number): void {
    this.#stormAt = { call, ms };
  }

  #stormAt: { call: number; ms: number } | undefined;

  readonly fetch = async (): Promise<unknown> => {
    this.calls += 1;
    if (this.calls === this.#stormAt?.call) this.refuseFor(this.#stormAt.ms);
    await sleep(this.#latencyMs);
    if (Date.now() < this.#failingUntil) {
      this.refused += 1;
      throw new UpstreamRefused();
    }
    return this.#value();
  };
}

/** The upstream's 429. */
export class UpstreamRefused extends Error {
  override name = 'TooManyRequests';
  readonly status = 429;
}

/** How a fleet runs. */
export interface FleetRun {
  /** One cache per simulated execution environment (each with its own memory tier and SDK client). */
  readonly caches: readonly DynamoCache[];
  readonly key: string;
  readonly upstream: FleetUpstream;
  /** Options of every `getOrSet` call. */
  readonly options: GetOrSetOptions;
  /** Invocations per second of each environment (one at a time: the next starts when the last has ended and its turn has come). */
  readonly ratePerSecond: number;
  readonly durationMs: number;
  /** Every environment's first invocation at the same moment (a cold start after a deploy), rather than at a random point of its first period. */
  readonly together?: boolean;
  /** Called once the fleet has run for `atMs`, e.g. to start an upstream storm. */
  readonly events?: ReadonlyArray<{ readonly atMs: number; run(): void }>;
}

/** What a fleet run came to. */
export interface FleetOutcome {
  readonly invocations: number;
  /** Invocations that ended with an error (no value). */
  readonly failed: number;
  /** Of `failed`: invocations of an environment that had had a value already (it holds one to answer, stale or not). */
  readonly failedAfterFill: number;
  /** Failures by error name. */
  readonly failures: Readonly<Record<string, number>>;
  readonly upstreamCalls: number;
  /** From the first invocation to the end of the last, ms (the last ones may end after `durationMs`). */
  readonly elapsedMs: number;
  /** Invocation latency, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Every environment's counters, summed. */
  readonly stats: CacheStats;
}

/**
 * Runs a fleet: each environment invokes `getOrSet(key, upstream.fetch, options)` at `ratePerSecond`, one
 * invocation at a time, for `durationMs`. Counts, not timings, are what a test should assert on.
 */
export async function runFleet(run: FleetRun): Promise<FleetOutcome> {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let failed = 0;
  let failedAfterFill = 0;
  const started = performance.now();
  const endAt = started + run.durationMs;
  const periodMs = 1000 / run.ratePerSecond;
  const timers = (run.events ?? []).map((event) => setTimeout(event.run, event.atMs));
  await Promise.all(
    run.caches.map(async (cache) => {
      let next = started + (run.together ? 0 : Math.random() * periodMs);
      let filled = false;
      for (;;) {
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        const begin = performance.now();
        if (begin >= endAt) return;
        try {
          await cache.getOrSet(run.key, run.upstream.fetch, run.options);
          filled = true;
        } catch (error) {
          failed += 1;
          if (filled) failedAfterFill += 1;
          const name = (error as Error)?.name ?? 'unknown';
          failures[name] = (failures[name] ?? 0) + 1;
        }
        latencies.push(performance.now() - begin);
        next = Math.max(next + periodMs, performance.now());
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  timers.forEach(clearTimeout);
  latencies.sort((a, b) => a - b);
  return {
    invocations: latencies.length,
    failed,
    failedAfterFill,
    failures,
    upstreamCalls: run.upstream.calls,
    elapsedMs,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? Number.NaN,
    stats: sumStats(run.caches),
  };
}

function sumStats(caches: readonly DynamoCache[]): CacheStats {
  const total = {} as Record<string, number>;
  for (const cache of caches) {
    for (const [name, value] of Object.entries(cache.stats())) if (typeof value === 'number') total[name] = (total[name] ?? 0) + value;
  }
  return total as unknown as CacheStats;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
