import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

/** Where the benchmarks run: a dynalite child process on 127.0.0.1, or a real table when configured. */
export interface DynamoTarget {
  readonly description: string;
  readonly clientConfig: DynamoDBClientConfig;
  /** The endpoint URL when it is a local server (the fault proxy sits in front of it). */
  readonly endpoint: string | undefined;
  /** One table for every contender (each uses its own key prefix); String partition key `id`. */
  readonly tableName: string;
  close(): Promise<void>;
}

const root = join(import.meta.dirname, '..', '..');

/**
 * With `DYNAMO_CACHE_TABLE` set, real DynamoDB (the standard credential chain, `AWS_REGION`, or
 * `AWS_ENDPOINT_URL_DYNAMODB`); otherwise dynalite in its own process, so the server does not share the
 * benchmark's event loop and CPU core.
 */
export async function startTarget(): Promise<DynamoTarget> {
  const configured = process.env.DYNAMO_CACHE_TABLE;
  if (configured) {
    const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL;
    return { description: `table ${configured} at ${endpoint ?? 'AWS'}`, clientConfig: {}, endpoint, tableName: configured, close: async () => {} };
  }
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [join(root, 'node_modules/dynalite/cli.js'), '--port', String(port), '--host', '127.0.0.1', '--createTableMs', '0'], {
    stdio: 'ignore',
  });
  await waitForPort(port);
  const endpoint = `http://127.0.0.1:${port}`;
  const clientConfig: DynamoDBClientConfig = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } };
  const tableName = 'bench-cache';
  const admin = new DynamoDBClient(clientConfig);
  await admin.send(
    new CreateTableCommand({
      TableName: tableName,
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  // dynalite turns a new table ACTIVE on a timer: a request sent at once can find it missing.
  while ((await admin.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus !== 'ACTIVE') await new Promise((resolve) => setTimeout(resolve, 5));
  admin.destroy();
  return {
    description: `dynalite ${dynaliteVersion()} child process (Node ${process.version}) on 127.0.0.1`,
    clientConfig,
    endpoint,
    tableName,
    close: async () => {
      child.kill();
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`dynalite did not start on port ${port}`);
}

function dynaliteVersion(): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules/dynalite/package.json'), 'utf8')) as { version: string }).version;
}
