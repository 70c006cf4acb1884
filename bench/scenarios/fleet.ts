import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DynamoCache, type GetOrSetOptions } from '../../src/index.ts';
import { FaultProxy } from '../../test/support/fault-proxy.ts';
import { FleetUpstream, runFleet, type FleetOutcome } from '../../test/support/fleet.ts';
import { PARTITION_READ_UNITS, PARTITION_WRITE_UNITS, PartitionModel, type PartitionFigures, type PartitionModelOptions } from '../../test/support/partition-model.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';

/** Simulated execution environments: each its own `DynamoCache`, memory tier and SDK client, in this process. */
const ENVIRONMENTS = 100;
/** DynamoDB's per-partition limits are scaled by this, so 100 environments stand for 10,000. */
const SCALE = 0.01;
const BURST_SECONDS = 1;
const RATE_PER_SECOND = 10;
const TTL_SECONDS = 5;

/** One fleet scenario: what the environments call, against what DynamoDB and upstream. */
interface FleetScenario {
  readonly id: string;
  readonly name: string;
  readonly seconds: number;
  readonly quickSeconds: number;
  /** What each invocation passes to `getOrSet`, besides default options. */
  readonly options: GetOrSetOptions;
  readonly together?: boolean;
  readonly model?: Omit<PartitionModelOptions, 'scale' | 'burstSeconds' | 'limits'>;
  /** From `fromSeconds` on (the fleet warm), the value's own partition gives this many read units per second. */
  readonly hot?: { readonly readPerSecond: number; readonly fromSeconds: number };
  readonly value?: () => unknown;
  /** The upstream answers 429 from `fromSeconds` for `seconds`. */
  readonly storm?: { readonly fromSeconds: number; readonly seconds: number };
  /** Upstream calls allowed, from the number of expiries in the run (every scenario also allows no failed invocation). */
  readonly allowed: (expiries: number) => number;
}

/** A 40 KB value that compresses little (random base64), so that about 30 KB is stored. */
const largeValue = () => ({ rows: randomBytes(30 * 1024).toString('base64') });

const SCENARIOS: readonly FleetScenario[] = [
  {
    id: 'cold-start',
    name: 'cold-start burst: every environment misses one token at once, then 10 invocations/s each',
    seconds: 15,
    quickSeconds: 6,
    options: { ttlSeconds: 3300 },
    together: true,
    allowed: () => 1,
  },
  {
    id: 'expiry',
    name: `expiry under load: ${TTL_SECONDS} s TTL, 10 invocations/s each`,
    seconds: 30,
    quickSeconds: 15,
    options: { ttlSeconds: TTL_SECONDS },
    allowed: (expiries) => expiries + 1,
  },
  {
    id: 'large-value',
    name: `the same with a 40 KB value (about 30 KB stored)`,
    seconds: 30,
    quickSeconds: 15,
    options: { ttlSeconds: TTL_SECONDS },
    value: largeValue,
    allowed: (expiries) => expiries + 1,
  },
  {
    id: 'hot-partition',
    name: `a throttled hot partition: once the fleet is warm (3 s), the value's partition gives 3 read units/s; stale windows 60 s`,
    seconds: 30,
    quickSeconds: 15,
    options: { ttlSeconds: TTL_SECONDS, staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 60 },
    hot: { readPerSecond: 3, fromSeconds: 3 },
    allowed: (expiries) => expiries + 2,
  },
  {
    id: 'upstream-storm',
    name: 'upstream 429 storm for 10 s, staleIfErrorSeconds 300',
    seconds: 30,
    quickSeconds: 15,
    options: { ttlSeconds: TTL_SECONDS, staleIfErrorSeconds: 300 },
    storm: { fromSeconds: 3, seconds: 10 },
    allowed: () => Number.POSITIVE_INFINITY,
  },
  {
    id: 'slow-dynamodb',
    name: 'DynamoDB slower than the budget: 200-400 ms per request (timeoutMs 300), every environment cold at once',
    seconds: 15,
    quickSeconds: 8,
    options: { ttlSeconds: TTL_SECONDS },
    together: true,
    model: { latencyMs: () => 200 + Math.random() * 200 },
    allowed: (expiries) => expiries + 1,
  },
];

interface FleetFigures {
  readonly id: string;
  readonly name: string;
  readonly seconds: number;
  readonly expiries: number;
  readonly allowed: number;
  readonly outcome: FleetOutcome;
  readonly requests: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly throttles: number;
  /** The value's partition, and the busiest one when another is. */
  readonly valuePartition: PartitionFigures | undefined;
  readonly busiest: PartitionFigures & { readonly role: string };
  readonly exceptions: number;
  /** The bench process's event-loop delay during the run, ms. */
  readonly loopDelayMs: { readonly p99: number; readonly max: number };
  readonly met: boolean;
}

const quietLogger = new Logger({ serviceName: 'bench-fleet', logLevel: 'SILENT' });

/**
 * The fleet at scale: 100 simulated execution environments (each its own `DynamoCache` with default options,
 * memory tier and SDK client) in this process, against the partition model (test/support/partition-model.ts:
 * DynamoDB's per-partition limits scaled by 0.01, 1 s of burst capacity, a few ms of service latency) in
 * front of the bench's dynalite, so they stand for 10,000 environments on real DynamoDB. `BENCH_FLEET=<id,id>`
 * runs some of the scenarios only.
 */
export async function fleet(ctx: BenchContext): Promise<Section> {
  if (ctx.target.endpoint === undefined || process.env.DYNAMO_CACHE_TABLE) {
    return { id: 'fleet', title: 'The fleet at scale', summary: 'Skipped: needs the local dynalite (the partition model sits in front of it).', tables: [], data: null };
  }
  const only = process.env.BENCH_FLEET?.split(',');
  const figures: FleetFigures[] = [];
  for (const scenario of SCENARIOS) {
    if (only !== undefined && !only.includes(scenario.id)) continue;
    ctx.log(`fleet: ${scenario.id}`);
    figures.push(await runScenario(ctx, scenario));
  }
  const failing = figures.filter((f) => !f.met);
  const rows = figures.map((f) => {
    const hot = f.valuePartition;
    return [
      f.name,
      `${count(f.outcome.upstreamCalls)} (${Number.isFinite(f.allowed) ? `<= ${count(f.allowed)}` : 'any'})`,
      count(f.expiries),
      `${count(f.outcome.invocations)} / ${count(f.outcome.failedAfterFill)}${f.outcome.failed > f.outcome.failedAfterFill ? ` (+${count(f.outcome.failed - f.outcome.failedAfterFill)} before their first value)` : ''}`,
      `${ms(f.outcome.p50)} / ${ms(f.outcome.p99)} / ${ms(f.outcome.max)}`,
      `${count(f.requests)}: ${count(f.readUnits)} RCU, ${count(f.writeUnits)} WCU`,
      hot === undefined ? 'n/a' : `${count(hot.peakReadUnits)} of ${count(hot.readLimit)} RCU, ${count(hot.peakWriteUnits)} of ${count(hot.writeLimit)} WCU`,
      `${f.busiest.role}: ${count(f.busiest.peakReadUnits)} of ${count(f.busiest.readLimit)} RCU, ${count(f.busiest.peakWriteUnits)} of ${count(f.busiest.writeLimit)} WCU`,
      count(f.throttles),
      count(f.exceptions),
      `${ms(f.loopDelayMs.p99)} / ${ms(f.loopDelayMs.max)}`,
      f.met ? 'yes' : '**no**',
    ];
  });
  return {
    id: 'fleet',
    title: 'The fleet at scale',
    summary:
      `${ENVIRONMENTS} simulated execution environments, each its own DynamoCache with default options (its own memory tier, and its own SDK client, warmed up before the run), in one process, ` +
      `each invoking getOrSet on one key ${RATE_PER_SECOND} times a second (one invocation at a time), against a partition model in front of dynalite: ` +
      `per partition key, token buckets of DynamoDB's ${count(PARTITION_READ_UNITS)} read and ${count(PARTITION_WRITE_UNITS)} write units per second scaled by ${SCALE} ` +
      `(${count(PARTITION_READ_UNITS * SCALE)} and ${count(PARTITION_WRITE_UNITS * SCALE)}), ${BURST_SECONDS} s of burst capacity, reads billed by item size and consistency, ` +
      `failed conditional writes billed, throttles answered as DynamoDB does (HTTP 400 ProvisionedThroughputExceededException, unprocessed batch items), 2-6 ms of service latency ` +
      `(test/support/partition-model.ts). At that scale the fleet stands for ${count(ENVIRONMENTS / SCALE)} environments. The upstream takes 20 ms. ` +
      `Expiries: the times the TTL elapsed in the run. Invocations fail only when getOrSet rejects; failed counts those of an environment that had had the value (one that never had it has nothing to answer); latency is per invocation (p50 / p99 / max). ` +
      `Peaks are the most units a partition consumed in any one second (for the hot partition, since it became hot). ` +
      `The fleet shares this process: its event-loop delay, reported, is latency every environment sees on top of DynamoDB's (none in Lambda, where each environment has its own CPU).`,
    tables: [
      {
        columns: [
          'scenario',
          'upstream calls (allowed)',
          'expiries',
          'invocations / failed',
          'invocation ms p50 / p99 / max',
          'DynamoDB requests: units',
          "value's partition: peak units/s of limit",
          'busiest partition: peak units/s of limit',
          'throttled requests and items',
          'exceptions',
          'event-loop delay ms p99 / max',
          'met',
        ],
        rows,
      },
    ],
    data: figures,
    headlines:
      figures.length === 0
        ? []
        : [
            failing.length === 0
              ? `at fleet scale (${ENVIRONMENTS} environments at 1/${count(1 / SCALE)} of DynamoDB's partition limits), every scenario keeps its promise: ${figures.map((f) => `${f.id} ${count(f.outcome.upstreamCalls)} upstream call(s), ${count(f.outcome.failedAfterFill)} failed`).join('; ')}`
              : `at fleet scale, ${figures.length - failing.length} of ${figures.length} scenarios keep their promise; missed: ${failing.map((f) => `${f.id} (${count(f.outcome.upstreamCalls)} upstream calls, ${count(f.outcome.failedAfterFill)} failed)`).join('; ')}`,
          ],
  };
}

async function runScenario(ctx: BenchContext, scenario: FleetScenario): Promise<FleetFigures> {
  const seconds = ctx.quick ? scenario.quickSeconds : scenario.seconds;
  const namespace = `fleet-${scenario.id}-${Date.now().toString(36)}`;
  const key = 'hot-key';
  const valueKey = `${namespace}:${key}`;
  const model = new PartitionModel({ ...scenario.model, scale: SCALE, burstSeconds: BURST_SECONDS });
  const proxy = await FaultProxy.start(ctx.target.endpoint!);
  const clientConfig = { ...ctx.target.clientConfig, endpoint: proxy.endpoint };
  // Each environment has its own SDK client, warmed up first (before the model counts anything): a client's first
  // request costs it milliseconds of CPU (in Lambda, each environment's own), which 100 clients starting at once in
  // one process would turn into DynamoDB latency that no real fleet sees.
  const clients = Array.from({ length: ENVIRONMENTS }, () => new DynamoDBClient({ ...clientConfig, maxAttempts: 1 }));
  await Promise.all(clients.map((client) => client.send(new DescribeTableCommand({ TableName: ctx.target.tableName }))));
  proxy.setModel(model);
  const caches = clients.map((client) => new DynamoCache({ tableName: ctx.target.tableName, client, namespace, logger: quietLogger }));
  const upstream = new FleetUpstream(scenario.value === undefined ? {} : { value: scenario.value });
  let exceptions = 0;
  const onException = () => {
    exceptions += 1;
  };
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onException);
  let outcome: FleetOutcome;
  // How late this process's event loop ran: the fleet shares one process (and the machine its cores), so a busy
  // loop reads as DynamoDB latency to every environment; reported so that a run on a loaded machine says so.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  try {
    outcome = await runFleet({
      caches,
      key,
      upstream,
      options: scenario.options,
      ratePerSecond: RATE_PER_SECOND,
      durationMs: seconds * 1000,
      together: scenario.together,
      events: [
        ...(scenario.storm === undefined ? [] : [{ atMs: scenario.storm.fromSeconds * 1000, run: () => upstream.refuseFor(scenario.storm!.seconds * 1000) }]),
        ...(scenario.hot === undefined ? [] : [{ atMs: scenario.hot.fromSeconds * 1000, run: () => model.limit(valueKey, { readPerSecond: scenario.hot!.readPerSecond }) }]),
      ],
    });
    // Requests still in flight (a release, a write) settle before the figures are read.
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onException);
    lag.disable();
    clients.forEach((client) => client.destroy());
    await proxy.close();
  }
  const partitions = model.partitions();
  const role = (partitionKey: string) =>
    partitionKey === valueKey ? 'value' : partitionKey.includes('#dc:l:') ? 'lease' : partitionKey.includes('#dc:meta') ? 'namespace' : partitionKey.includes('#dc:c:') ? 'chunk' : 'other';
  // The times the TTL elapsed while the fleet ran (its last invocations may end after the run's length).
  const expiries = Math.floor(outcome.elapsedMs / 1000 / ((scenario.options.ttlSeconds as number | undefined) ?? TTL_SECONDS));
  const allowed = scenario.allowed(expiries);
  const met = outcome.upstreamCalls <= allowed && outcome.failedAfterFill === 0 && exceptions === 0;
  return {
    id: scenario.id,
    name: scenario.name,
    seconds,
    expiries,
    allowed,
    outcome,
    requests: model.requestCount,
    readUnits: model.readUnits,
    writeUnits: model.writeUnits,
    throttles: model.throttledRequests + model.throttledItems,
    valuePartition: partitions.find((p) => p.key === valueKey),
    busiest: { ...partitions[0]!, role: role(partitions[0]!.key) },
    exceptions,
    loopDelayMs: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
    met,
  };
}
