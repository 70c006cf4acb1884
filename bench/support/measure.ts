import { Bench } from 'tinybench';

/** Latency of one contender in one scenario, in milliseconds, from every sample of every round. */
export interface Latency {
  readonly name: string;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  /** Operations per second, one at a time: 1000 / mean. */
  readonly opsPerSecond: number;
  readonly samples: number;
}

/** How long to measure. */
export interface MeasureOptions {
  /** Rounds; each runs every task once, in an order rotated from the previous round's. */
  readonly rounds: number;
  /** Time per task per round, in ms. */
  readonly timeMs: number;
  /** Warm-up per task before the first round, in ms. */
  readonly warmupMs: number;
}

/**
 * Measures tasks with tinybench, interleaved: `rounds` rounds, each running every task for `timeMs`, the
 * order rotated each round so that no contender always runs first (or last, on a warmer JIT or a busier
 * server). Samples of all rounds are merged before percentiles are taken.
 */
export async function measureInterleaved(tasks: ReadonlyArray<{ name: string; fn: () => unknown }>, options: MeasureOptions): Promise<Latency[]> {
  const samples = new Map<string, number[]>(tasks.map((task) => [task.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    const bench = new Bench({ time: options.timeMs, warmup: round === 0, warmupTime: options.warmupMs, retainSamples: true, throws: true });
    const order = tasks.map((_, i) => tasks[(i + round) % tasks.length]!);
    for (const task of order) bench.add(task.name, task.fn);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result as { state: string; latency?: { samples?: readonly number[] } };
      if (result.state !== 'completed') throw new Error(`${task.name}: ${result.state}`);
      // A loop, not push(...samples): a memory-tier task yields hundreds of thousands of samples per round.
      const merged = samples.get(task.name)!;
      for (const sample of result.latency?.samples ?? []) merged.push(sample);
    }
  }
  return tasks.map((task) => summarize(task.name, samples.get(task.name)!));
}

/**
 * Measures tasks call by call in turn (A, B, A, B...), rather than in blocks: what one call leaves behind
 * (a table that grew, a server's garbage collection) then weighs on every task alike. For tasks whose
 * difference is small against the server's own drift, such as a request by hand and the same request
 * through the library. The first `warmup` turns are not counted.
 */
export async function measureAlternating(tasks: ReadonlyArray<{ name: string; fn: () => unknown }>, turns: number, warmup = Math.ceil(turns / 10)): Promise<Latency[]> {
  const samples = tasks.map(() => [] as number[]);
  for (let turn = 0; turn < warmup + turns; turn++) {
    // The order rotates each turn, so no task always follows the same one.
    for (let i = 0; i < tasks.length; i++) {
      const index = (i + turn) % tasks.length;
      const started = performance.now();
      await tasks[index]!.fn();
      if (turn >= warmup) samples[index]!.push(performance.now() - started);
    }
  }
  return tasks.map((task, i) => summarize(task.name, samples[i]!));
}

/** Percentiles of raw samples (ms). */
export function summarize(name: string, raw: readonly number[]): Latency {
  const sorted = [...raw].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
  return { name, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), mean, opsPerSecond: mean > 0 ? 1000 / mean : 0, samples: sorted.length };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = (sorted.length - 1) * p;
  const low = Math.floor(index);
  const high = Math.ceil(index);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (index - low);
}

/** Times one async call, in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}
