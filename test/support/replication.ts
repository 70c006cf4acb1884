import { DeleteItemCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ModelDecision, RequestModel } from './fault-proxy.ts';

type WireItem = Record<string, Record<string, unknown>>;

/**
 * A DynamoDB global table's replication in multi-Region eventual consistency (MREC), between two local
 * "Regions" (two dynalite servers), as a {@link RequestModel} in front of one of them: every write that Region
 * applies is copied into the other one `lagMs` later, unconditionally (last writer wins, as Global Tables
 * resolve concurrent writes). A conditional write, such as the refresh lease, is checked against its own Region
 * only: that is what the lease can promise per Region. (Tables with a String partition key.)
 *
 * The copies of one item, in either direction, are applied one at a time (see {@link Replication.between}), so
 * the Regions converge once writes stop, as Global Tables do: two copies crossing (each Region's item read,
 * then written into the other) would swap the two items and leave the Regions apart for good.
 */
export class Replication implements RequestModel {
  /** Replication both ways between two Regions (their clients): the models to put before `a` and before `b`. */
  static between(a: DynamoDBClient, b: DynamoDBClient, lagMs: number, keyAttribute = 'id'): [beforeA: Replication, beforeB: Replication] {
    const copying = new Map<string, Promise<void>>();
    return [new Replication(a, b, lagMs, keyAttribute, copying), new Replication(b, a, lagMs, keyAttribute, copying)];
  }

  /** Writes copied so far. */
  copied = 0;
  readonly #source: DynamoDBClient;
  readonly #target: DynamoDBClient;
  readonly #lagMs: number;
  readonly #keyAttribute: string;
  /** The last copy queued of each item (by table and key), whichever its direction: the next one waits for it. */
  readonly #copying: Map<string, Promise<void>>;

  /** Copies what `source` (the Region this model stands before) applies into `target`, `lagMs` later. */
  constructor(source: DynamoDBClient, target: DynamoDBClient, lagMs: number, keyAttribute = 'id', copying = new Map<string, Promise<void>>()) {
    this.#source = source;
    this.#target = target;
    this.#lagMs = lagMs;
    this.#keyAttribute = keyAttribute;
    this.#copying = copying;
  }

  decide(operation: string, body: Buffer): ModelDecision {
    if (!['PutItem', 'DeleteItem', 'UpdateItem', 'BatchWriteItem'].includes(operation)) return { forward: body };
    const request = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    return {
      forward: body,
      settle: (status, answer) => {
        if (status === 200) setTimeout(() => void this.#copy(operation, request).catch(() => undefined), this.#lagMs);
        return answer;
      },
    };
  }

  async #copy(operation: string, request: Record<string, unknown>): Promise<void> {
    const tableName = request.TableName as string;
    const keys: WireItem[] =
      operation === 'BatchWriteItem'
        ? Object.values(request.RequestItems as Record<string, Array<{ PutRequest?: { Item: WireItem }; DeleteRequest?: { Key: WireItem } }>>)
            .flat()
            .map((write) => write.PutRequest?.Item ?? write.DeleteRequest!.Key)
        : [(request.Item ?? request.Key) as WireItem];
    const table = operation === 'BatchWriteItem' ? Object.keys(request.RequestItems as object)[0]! : tableName;
    for (const wire of keys) {
      const key = { [this.#keyAttribute]: { S: wire[this.#keyAttribute]!.S as string } };
      const item = `${table}\u0000${key[this.#keyAttribute]!.S}`;
      const copy = (this.#copying.get(item) ?? Promise.resolve()).then(async () => {
        // The item as the source Region holds it now: what its replication stream would carry.
        const { Item } = await this.#source.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
        if (Item === undefined) await this.#target.send(new DeleteItemCommand({ TableName: table, Key: key }));
        else await this.#target.send(new PutItemCommand({ TableName: table, Item }));
        this.copied += 1;
      });
      const queued = copy.catch(() => undefined);
      this.#copying.set(item, queued);
      await copy.finally(() => {
        if (this.#copying.get(item) === queued) this.#copying.delete(item);
      });
    }
  }
}
