import type { ModelDecision, RequestModel } from './fault-proxy.ts';

/** DynamoDB's documented limits of one partition, per second. */
export const PARTITION_READ_UNITS = 3000;
export const PARTITION_WRITE_UNITS = 1000;

/** Settings of a {@link PartitionModel}. */
export interface PartitionModelOptions {
  /**
   * Scale of DynamoDB's per-partition limits (3,000 read and 1,000 write units per second): at 0.01 a partition
   * gives 30 and 10, so that 100 simulated execution environments in one process stand for 10,000. Default `0.01`.
   */
  scale?: number;
  /** Seconds of unused capacity a partition keeps (the size of its token buckets). Default `1`. */
  burstSeconds?: number;
  /** Limits of particular partition keys (units per second, as modelled, i.e. already scaled), e.g. a partition shared with other hot keys. */
  limits?: (key: string) => { readonly readPerSecond?: number; readonly writePerSecond?: number } | undefined;
  /** DynamoDB's service time of each request in ms: a number, or drawn per request. Default 2-6 ms. */
  latencyMs?: number | (() => number);
  /** The partition key attribute. Default `id`. */
  keyAttribute?: string;
}

/** Consumption and throttling seen on one partition key. */
export interface PartitionFigures {
  readonly key: string;
  readonly readUnits: number;
  readonly writeUnits: number;
  /** Most read (write) units consumed in any one second. */
  readonly peakReadUnits: number;
  readonly peakWriteUnits: number;
  readonly readLimit: number;
  readonly writeLimit: number;
  /** Requests answered ProvisionedThroughputExceededException, and batch items answered unprocessed. */
  readonly throttles: number;
}

type Json = Record<string, unknown>;
type WireItem = Record<string, Record<string, unknown>>;

const SLOT_MS = 100;
const THROTTLE = {
  status: 400,
  body: JSON.stringify({
    __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message: 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  }),
};

/**
 * DynamoDB's partitions, modelled in front of a DynamoDB-protocol server (dynalite) by a {@link FaultProxy}:
 * every partition key has a read and a write token bucket, refilled at DynamoDB's per-partition limits scaled
 * by `scale`, holding `burstSeconds` of capacity. What a request costs is DynamoDB's billing: a read one unit
 * per 4 KB of the item (strongly consistent) or half of that (eventually consistent), an absent item as a
 * small one; a write one unit per 1 KB of the larger of the old and new item, a conditional write that fails
 * included; batches per item. A request is admitted while its partition has at least its smallest charge left
 * and is then charged in full (a 40 KB write at scale 0.01 leaves its partition in debt for seconds: writes
 * are not scaled, only the rates are). A throttled request is answered as DynamoDB answers it, HTTP 400
 * `ProvisionedThroughputExceededException`, so the SDK's own retry code runs; a batch gives its throttled
 * items back as `UnprocessedKeys`/`UnprocessedItems` (and is refused whole when every item is throttled).
 * Every request takes the service latency. Partition keys stand for partitions: two keys never share one.
 */
export class PartitionModel implements RequestModel {
  /** Requests by operation, throttled ones included. */
  readonly requests = new Map<string, number>();
  /** Whole requests answered ProvisionedThroughputExceededException. */
  throttledRequests = 0;
  /** Batch items answered unprocessed. */
  throttledItems = 0;
  readUnits = 0;
  writeUnits = 0;

  readonly #readRate: number;
  readonly #writeRate: number;
  readonly #burstSeconds: number;
  readonly #limits: PartitionModelOptions['limits'];
  readonly #latency: () => number;
  readonly #keyAttribute: string;
  readonly #partitions = new Map<string, Partition>();
  /** Item sizes as last written, for the write units of replacing or deleting an item. */
  readonly #sizes = new Map<string, number>();

  constructor(options: PartitionModelOptions = {}) {
    const scale = options.scale ?? 0.01;
    this.#readRate = PARTITION_READ_UNITS * scale;
    this.#writeRate = PARTITION_WRITE_UNITS * scale;
    this.#burstSeconds = options.burstSeconds ?? 1;
    this.#limits = options.limits;
    const latency = options.latencyMs ?? (() => 2 + Math.random() * 4);
    this.#latency = typeof latency === 'number' ? () => latency : latency;
    this.#keyAttribute = options.keyAttribute ?? 'id';
  }

  /** Requests in total. */
  get requestCount(): number {
    let total = 0;
    for (const n of this.requests.values()) total += n;
    return total;
  }

  /** Figures of every partition key seen, the busiest first (by peak read units against the limit). */
  partitions(): PartitionFigures[] {
    return [...this.#partitions.entries()]
      .map(([key, p]) => ({
        key,
        readUnits: p.readUnits,
        writeUnits: p.writeUnits,
        peakReadUnits: peak(p.readSlots),
        peakWriteUnits: peak(p.writeSlots),
        readLimit: p.read.rate,
        writeLimit: p.write.rate,
        throttles: p.throttles,
      }))
      .sort((a, b) => Math.max(b.peakReadUnits / b.readLimit, b.peakWriteUnits / b.writeLimit) - Math.max(a.peakReadUnits / a.readLimit, a.peakWriteUnits / a.writeLimit));
  }

  /**
   * Changes the limits of one partition key from now on (another tenant's keys got hot on its partition, say); its
   * peaks are counted from now on.
   */
  limit(key: string, limits: { readonly readPerSecond?: number; readonly writePerSecond?: number }): void {
    const partition = this.#partition(key);
    partition.readSlots.clear();
    partition.writeSlots.clear();
    if (limits.readPerSecond !== undefined) partition.read.setRate(limits.readPerSecond, limits.readPerSecond * this.#burstSeconds);
    if (limits.writePerSecond !== undefined) partition.write.setRate(limits.writePerSecond, limits.writePerSecond * this.#burstSeconds);
  }

  decide(operation: string, body: Buffer): ModelDecision {
    this.requests.set(operation, (this.requests.get(operation) ?? 0) + 1);
    const delayMs = this.#latency();
    const request = JSON.parse(body.toString('utf8')) as Json;
    switch (operation) {
      case 'GetItem':
        return this.#read(request, delayMs);
      case 'BatchGetItem':
        return this.#batchRead(request, delayMs);
      case 'PutItem':
      case 'DeleteItem':
      case 'UpdateItem':
        return this.#write(operation, request, delayMs);
      case 'BatchWriteItem':
        return this.#batchWrite(request, delayMs);
      default:
        return { forward: body, delayMs };
    }
  }

  #read(request: Json, delayMs: number): ModelDecision {
    const key = this.#keyOf(request.Key as WireItem);
    const consistent = request.ConsistentRead === true;
    const least = consistent ? 1 : 0.5;
    const partition = this.#partition(key);
    if (!partition.read.admit(least)) return this.#throttled(partition, delayMs);
    return {
      forward: Buffer.from(JSON.stringify(request)),
      delayMs,
      settle: (status, answer) => {
        if (status !== 200) partition.read.refund(least);
        else {
          const item = (JSON.parse(answer.toString('utf8')) as Json).Item as WireItem | undefined;
          this.#charge(partition, 'read', readUnits(item === undefined ? 0 : itemSize(item), consistent), least);
        }
        return answer;
      },
    };
  }

  #batchRead(request: Json, delayMs: number): ModelDecision {
    const requested = request.RequestItems as Record<string, Json & { Keys: WireItem[]; ConsistentRead?: boolean }>;
    const admitted = new Map<string, Array<{ key: string; partition: Partition }>>();
    const unprocessed: Record<string, Json> = {};
    const throttled: Partition[] = [];
    let any = false;
    for (const [table, spec] of Object.entries(requested)) {
      const least = spec.ConsistentRead === true ? 1 : 0.5;
      const keep: WireItem[] = [];
      const left: WireItem[] = [];
      const charged: Array<{ key: string; partition: Partition }> = [];
      for (const wireKey of spec.Keys) {
        const key = this.#keyOf(wireKey);
        const partition = this.#partition(key);
        if (partition.read.admit(least)) {
          keep.push(wireKey);
          charged.push({ key, partition });
        } else {
          left.push(wireKey);
          throttled.push(partition);
        }
      }
      if (keep.length > 0) any = true;
      spec.Keys = keep;
      admitted.set(table, charged);
      if (left.length > 0) unprocessed[table] = { ...spec, Keys: left };
    }
    for (const partition of throttled) partition.throttles += 1;
    // DynamoDB refuses a batch whose every item is throttled with the exception itself.
    if (!any) {
      this.throttledRequests += 1;
      return { answer: THROTTLE, delayMs };
    }
    this.throttledItems += throttled.length;
    for (const table of Object.keys(requested)) if (requested[table]!.Keys.length === 0) delete requested[table];
    return {
      forward: Buffer.from(JSON.stringify(request)),
      delayMs,
      settle: (status, answer) => {
        const parsed = JSON.parse(answer.toString('utf8')) as Json & { Responses?: Record<string, WireItem[]>; UnprocessedKeys?: Record<string, Json> };
        for (const [table, charged] of admitted) {
          const least = requested[table]?.ConsistentRead === true ? 1 : 0.5;
          const found = new Map((parsed.Responses?.[table] ?? []).map((item) => [this.#keyOf(item), item]));
          for (const { key, partition } of charged) {
            if (status !== 200) partition.read.refund(least);
            else {
              const item = found.get(key);
              this.#charge(partition, 'read', readUnits(item === undefined ? 0 : itemSize(item), least === 1), least);
            }
          }
        }
        if (status !== 200 || Object.keys(unprocessed).length === 0) return answer;
        parsed.UnprocessedKeys = { ...parsed.UnprocessedKeys, ...unprocessed };
        return Buffer.from(JSON.stringify(parsed));
      },
    };
  }

  #write(operation: string, request: Json, delayMs: number): ModelDecision {
    const item = request.Item as WireItem | undefined;
    const key = this.#keyOf((item ?? request.Key) as WireItem);
    const old = this.#sizes.get(key) ?? 0;
    const size = operation === 'PutItem' ? itemSize(item!) : operation === 'UpdateItem' ? Math.max(old, 100) : 0;
    const units = writeUnits(Math.max(old, size));
    const partition = this.#partition(key);
    if (!partition.write.admit(1, units)) return this.#throttled(partition, delayMs);
    this.#record(partition, 'write', units);
    return {
      forward: Buffer.from(JSON.stringify(request)),
      delayMs,
      settle: (status, answer) => {
        if (status === 200) this.#resize(key, size);
        // A conditional write that fails still costs its units; any other refusal does not.
        else if (!answer.toString('utf8').includes('ConditionalCheckFailed')) this.#refund(partition, 'write', units);
        return answer;
      },
    };
  }

  #batchWrite(request: Json, delayMs: number): ModelDecision {
    const requested = request.RequestItems as Record<string, Array<{ PutRequest?: { Item: WireItem }; DeleteRequest?: { Key: WireItem } }>>;
    const applied: Array<{ key: string; size: number }> = [];
    const unprocessed: Record<string, unknown[]> = {};
    const charged: Array<{ partition: Partition; units: number }> = [];
    for (const [table, writes] of Object.entries(requested)) {
      const keep: typeof writes = [];
      for (const write of writes) {
        const key = this.#keyOf(write.PutRequest?.Item ?? write.DeleteRequest!.Key);
        const size = write.PutRequest === undefined ? 0 : itemSize(write.PutRequest.Item);
        const units = writeUnits(Math.max(this.#sizes.get(key) ?? 0, size));
        const partition = this.#partition(key);
        if (partition.write.admit(1, units)) {
          keep.push(write);
          applied.push({ key, size });
          charged.push({ partition, units });
        } else (unprocessed[table] ??= []).push(write);
      }
      requested[table] = keep;
    }
    const throttled = Object.values(unprocessed).reduce((n, writes) => n + writes.length, 0);
    if (applied.length === 0) {
      this.throttledRequests += 1;
      return { answer: THROTTLE, delayMs };
    }
    this.throttledItems += throttled;
    for (const { partition, units } of charged) this.#record(partition, 'write', units);
    for (const table of Object.keys(requested)) if (requested[table]!.length === 0) delete requested[table];
    return {
      forward: Buffer.from(JSON.stringify(request)),
      delayMs,
      settle: (status, answer) => {
        if (status !== 200) {
          for (const { partition, units } of charged) this.#refund(partition, 'write', units);
          return answer;
        }
        for (const { key, size } of applied) this.#resize(key, size);
        if (throttled === 0) return answer;
        const parsed = JSON.parse(answer.toString('utf8')) as Json & { UnprocessedItems?: Record<string, unknown[]> };
        parsed.UnprocessedItems = { ...parsed.UnprocessedItems, ...unprocessed };
        return Buffer.from(JSON.stringify(parsed));
      },
    };
  }

  #throttled(partition: Partition, delayMs: number): ModelDecision {
    partition.throttles += 1;
    this.throttledRequests += 1;
    return { answer: THROTTLE, delayMs };
  }

  /** Charges what a read cost beyond the least it was admitted with. */
  #charge(partition: Partition, kind: 'read', units: number, alreadyTaken: number): void {
    partition.read.take(units - alreadyTaken);
    this.#record(partition, kind, units);
  }

  #record(partition: Partition, kind: 'read' | 'write', units: number): void {
    const slot = Math.floor(Date.now() / SLOT_MS);
    if (kind === 'read') {
      this.readUnits += units;
      partition.readUnits += units;
      partition.readSlots.set(slot, (partition.readSlots.get(slot) ?? 0) + units);
    } else {
      this.writeUnits += units;
      partition.writeUnits += units;
      partition.writeSlots.set(slot, (partition.writeSlots.get(slot) ?? 0) + units);
    }
  }

  #refund(partition: Partition, kind: 'write', units: number): void {
    partition.write.refund(units);
    this.#record(partition, kind, -units);
  }

  #resize(key: string, size: number): void {
    if (size === 0) this.#sizes.delete(key);
    else this.#sizes.set(key, size);
  }

  #partition(key: string): Partition {
    let partition = this.#partitions.get(key);
    if (partition === undefined) {
      const own = this.#limits?.(key);
      const readRate = own?.readPerSecond ?? this.#readRate;
      const writeRate = own?.writePerSecond ?? this.#writeRate;
      partition = {
        read: new TokenBucket(readRate, readRate * this.#burstSeconds),
        write: new TokenBucket(writeRate, writeRate * this.#burstSeconds),
        readUnits: 0,
        writeUnits: 0,
        readSlots: new Map(),
        writeSlots: new Map(),
        throttles: 0,
      };
      this.#partitions.set(key, partition);
    }
    return partition;
  }

  #keyOf(item: WireItem): string {
    const value = item[this.#keyAttribute];
    return String(value?.S ?? value?.N ?? JSON.stringify(value));
  }
}

interface Partition {
  readonly read: TokenBucket;
  readonly write: TokenBucket;
  readUnits: number;
  writeUnits: number;
  /** Units consumed per 100 ms slot (epoch ms / 100). */
  readonly readSlots: Map<number, number>;
  readonly writeSlots: Map<number, number>;
  throttles: number;
}

/** Capacity refilled continuously at `rate` units per second up to `capacity`; it may go below zero (a large write). */
class TokenBucket {
  rate: number;
  #capacity: number;
  #tokens: number;
  #at = Date.now();

  constructor(rate: number, capacity: number) {
    this.rate = rate;
    this.#capacity = capacity;
    this.#tokens = capacity;
  }

  /** Takes `charge` units if at least `least` are left. */
  admit(least: number, charge = least): boolean {
    this.#refill();
    if (this.#tokens < least) return false;
    this.#tokens -= charge;
    return true;
  }

  setRate(rate: number, capacity: number): void {
    this.#refill();
    this.rate = rate;
    this.#capacity = capacity;
    this.#tokens = Math.min(this.#tokens, capacity);
  }

  take(units: number): void {
    this.#refill();
    this.#tokens -= units;
  }

  refund(units: number): void {
    this.#refill();
    this.#tokens = Math.min(this.#capacity, this.#tokens + units);
  }

  #refill(): void {
    const now = Date.now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
  }
}

/** The most units consumed in any one second (ten consecutive 100 ms slots). */
function peak(slots: Map<number, number>): number {
  let best = 0;
  for (const start of slots.keys()) {
    let sum = 0;
    for (let i = 0; i < 1000 / SLOT_MS; i++) sum += slots.get(start + i) ?? 0;
    best = Math.max(best, sum);
  }
  return best;
}

/** Read units of an item of `bytes`: one per 4 KB strongly consistent, half that eventually consistent. */
function readUnits(bytes: number, consistent: boolean): number {
  const blocks = Math.max(1, Math.ceil(bytes / 4096));
  return consistent ? blocks : blocks / 2;
}

/** Write units of an item of `bytes`: one per 1 KB. */
function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 1024));
}

/** An item's size as DynamoDB counts it: attribute names and values, in bytes (numbers as their digits). */
export function itemSize(item: WireItem): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function valueSize(value: Record<string, unknown>): number {
  const [type, content] = Object.entries(value)[0] ?? ['NULL', true];
  switch (type) {
    case 'S':
      return Buffer.byteLength(content as string);
    case 'N':
      return Math.ceil(String(content).replace(/^[-+]?0*|\.|e.*$/gi, '').replace(/0+$/, '').length / 2) + 1;
    case 'B':
      return Buffer.from(content as string, 'base64').byteLength;
    case 'SS':
    case 'NS':
    case 'BS':
      return (content as string[]).reduce((n, member) => n + valueSize({ [type.slice(0, 1)]: member }), 0);
    case 'L':
      return 3 + (content as Array<Record<string, unknown>>).reduce((n, member) => n + 1 + valueSize(member), 0);
    case 'M':
      return 3 + Object.entries(content as Record<string, Record<string, unknown>>).reduce((n, [name, member]) => n + 1 + Buffer.byteLength(name) + valueSize(member), 0);
    default:
      return 1;
  }
}
