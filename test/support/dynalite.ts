import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ScanCommand, type AttributeValue, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_ATTRIBUTE_NAMES } from '../../src/storage/item.ts';

/** A dynalite server on a random loopback port. */
export interface LocalDynamo {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Starts an in-memory dynalite on 127.0.0.1 with instant table creation. */
export async function startDynalite(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // Requests dynalite is still working on. A client that gave up (the library's timeouts do, by design) closes
  // its connection, which lets the server close, while dynalite goes on with the request: closing its database
  // then makes that request's next read throw "Database is closed" as an uncaught exception.
  let working = 0;
  server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    working += 1;
    const end = response.end.bind(response) as (...args: unknown[]) => ServerResponse;
    response.end = ((...args: unknown[]) => {
      working -= 1;
      return end(...args);
    }) as ServerResponse['end'];
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const started = Date.now(); working > 0 && Date.now() - started < 5000; ) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Client settings for a local endpoint: fixed region and dummy credentials, no real AWS involved. */
export function localClientConfig(endpoint: string, extra: DynamoDBClientConfig = {}): DynamoDBClientConfig {
  return { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, ...extra };
}

/** A raw SDK client for arranging and inspecting items directly. */
export function rawClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient(localClientConfig(endpoint));
}

let tableCounter = 0;

/** Creates a cache table (String hash key, default `id`) with a unique name and returns the name. */
export async function createCacheTable(client: DynamoDBClient, keyAttribute: string = DEFAULT_ATTRIBUTE_NAMES.key): Promise<string> {
  const tableName = `cache-${process.pid}-${++tableCounter}-${Date.now()}`;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      KeySchema: [{ AttributeName: keyAttribute, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: keyAttribute, AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await untilActive(client, tableName);
  return tableName;
}

/**
 * Waits until a table just created is ACTIVE. dynalite turns a table ACTIVE on a timer, even with
 * createTableMs 0: a request sent at once can still find it CREATING (ResourceNotFoundException).
 */
export async function untilActive(client: DynamoDBClient, tableName: string): Promise<void> {
  while ((await client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus !== 'ACTIVE') {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every item of a table, page by page. */
export async function scanAll(client: DynamoDBClient, tableName: string): Promise<Array<Record<string, AttributeValue>>> {
  const items: Array<Record<string, AttributeValue>> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}
