import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand', 'ScanCommand', 'TransactGetItemsCommand']);
const CAPACITY_REPORTING = new Set([...READS, 'PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);

/**
 * Counts the DynamoDB requests a client sends and the capacity units DynamoDB says they consumed. It asks
 * every request for `ReturnConsumedCapacity: TOTAL` (dynalite and DynamoDB both answer it), so the units are
 * DynamoDB's own numbers, not an estimate from item sizes. Measured per client, so per contender.
 */
export class RequestMeter {
  requests = 0;
  readUnits = 0;
  writeUnits = 0;
  readonly byOperation = new Map<string, number>();
  /** Every write request with its key and the units it consumed, oldest first (for per-request figures). */
  readonly writes: Array<{ command: string; key: string | undefined; units: number }> = [];

  /** Adds the meter to `client` (also the client under a `DynamoDBDocument`, which shares its stack). */
  attach(client: Pick<DynamoDBClient, 'middlewareStack'>): this {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = String(context.commandName ?? 'unknown');
        this.requests += 1;
        this.byOperation.set(command, (this.byOperation.get(command) ?? 0) + 1);
        const input = args.input as Record<string, unknown>;
        if (CAPACITY_REPORTING.has(command) && input.ReturnConsumedCapacity === undefined) input.ReturnConsumedCapacity = 'TOTAL';
        const result = await next(args);
        const consumed = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }> }).ConsumedCapacity;
        const units = [consumed ?? []].flat().reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
        if (READS.has(command)) this.readUnits += units;
        else {
          this.writeUnits += units;
          const item = (input.Item ?? input.Key) as Record<string, { S?: string }> | undefined;
          this.writes.push({ command, key: item?.id?.S, units });
        }
        return result;
      },
      { step: 'initialize', name: 'benchRequestMeter', override: true },
    );
    return this;
  }

  reset(): void {
    this.requests = 0;
    this.readUnits = 0;
    this.writeUnits = 0;
    this.byOperation.clear();
    this.writes.length = 0;
  }
}

/** A meter that counts nothing: asking DynamoDB for consumed capacity is work a latency comparison must not add to either side. */
export const UNMETERED = { attach: () => UNMETERED } as unknown as RequestMeter;
