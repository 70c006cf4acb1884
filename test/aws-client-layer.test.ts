import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Library from '../src/index.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { localAwsConfig } from './support/local-aws.ts';
import { RecordingLogger } from './support/recording-logger.ts';
import { S3Server } from './support/s3-server.ts';
import { TokenServer } from './support/token-server.ts';

const db = useDynalite();
const layerModule = join(import.meta.dirname, '..', 'layer/nodejs/node_modules/dynamo-cache');
let layer: typeof Library;
let s3: S3Server;
let tokens: TokenServer;

beforeAll(async () => {
  // Built by test/global-setup.ts.
  layer = (await import(pathToFileURL(join(layerModule, 'index.mjs')).href)) as typeof Library;
  s3 = await S3Server.start();
  tokens = await TokenServer.start();
});
afterAll(async () => {
  await s3?.close();
  await tokens?.close();
});

describe('the Lambda layer carries both features, and no SDK client', () => {
  it('bundles cacheAwsClient and clientCredentialsToken without any AWS SDK client code', async () => {
    // The layer's own code: its entry, the parts it loads on first use and their chunks.
    const files = (await readdir(layerModule)).filter((file) => file.endsWith('.mjs'));
    const text = (await Promise.all(files.map((file) => readFile(join(layerModule, file), 'utf8')))).join('\n');
    expect(text).toMatch(/dynamoCacheAwsClient/);
    expect(text).toMatch(/grant_type/);
    expect(text).not.toMatch(/client-s3|client-cognito|client-ssm|client-secrets-manager|client-sts|class S3Client\b/);
  });

  it("the layer's cacheAwsClient caches the function's own S3 client (another copy of the SDK), and its token provider shares tokens", async () => {
    s3.put('bucket', 'from-layer.txt', 'layer');
    const tableName = await db.newTable();
    const cache = new layer.DynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger() });
    const client = layer.cacheAwsClient(new S3Client({ ...localAwsConfig(s3.endpoint), forcePathStyle: true }), { cache, commands: { GetObjectCommand: { ttlSeconds: 60 } } });
    for (let i = 0; i < 2; i += 1) expect(await (await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'from-layer.txt' }))).Body!.transformToString()).toBe('layer');
    expect(s3.counts.GET).toBe(1);

    const token = layer.clientCredentialsToken({ cache, tokenUrl: tokens.url, clientId: 'demo-client', clientSecret: 'demo-secret' });
    expect([await token(), await token()]).toEqual(['token-1', 'token-1']);
    expect(tokens.calls).toBe(1);
  });
});
