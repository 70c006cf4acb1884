// Review finding (low; table-writer threat model): with encryption on, deleting a path's invalidation
// generation item is not "a miss" (docs/integrity.md) but brings back the responses the invalidation made
// unreachable: PathGenerations#read reads an absent item as generation "0".
import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { generationKey } from '../src/middleware/memo-key.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent } from './support/http-events.ts';
import { header, json, setupMiddy } from './support/middy-harness.ts';

const db = useDynalite();
const encryption = { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' };

it('an invalidated response does not come back when the generation item is deleted', async () => {
  let balance = 100;
  const handler = async (e: any) => {
    if (e.requestContext.http.method === 'POST') balance = 0;
    return json(200, { balance });
  };
  const options = { encryption, response: { ttlSeconds: 600, keyPrefix: 'fn' } };
  const env1 = await setupMiddy(db, handler, options);
  await env1.invoke(httpApiEvent({ path: '/account' }));
  await env1.invoke(httpApiEvent({ path: '/account', method: 'POST' })); // invalidates /account
  expect(JSON.parse((await env1.invoke(httpApiEvent({ path: '/account' }))).body).balance).toBe(0);
  // Someone with write access to the table deletes the generation item.
  await db.client.send(new DeleteItemCommand({ TableName: env1.tableName, Key: { id: { S: generationKey('fn', '/account') } } }));
  const env2 = await setupMiddy(db, handler, { ...options, tableName: env1.tableName });
  const answer = await env2.invoke(httpApiEvent({ path: '/account' }));
  expect(JSON.parse(answer.body).balance, `X-Cache: ${header(answer, 'X-Cache')}`).toBe(0);
});
