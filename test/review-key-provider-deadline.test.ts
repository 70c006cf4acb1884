// Review finding: the encryption key function (Secrets Manager, KMS...) is awaited with no deadline and no
// signal (Keyring#ring), so a slow key source makes cache calls outlive the caller's signal/deadline, and a
// memoized request outlive its invocation's remaining time.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { json, setupMiddy } from './support/middy-harness.ts';

const db = useDynalite();
const key1 = randomBytes(32);
/** A key source as slow as a throttled Secrets Manager with the SDK's retries. */
const slowKeys = async () => {
  await sleep(3000);
  return { k1: key1 };
};

describe('review: a slow encryption key source', () => {
  it("get settles when the caller's signal aborts, not when the key source answers", async () => {
    const { tableName } = await db.newCache();
    const { cache: writer } = await db.newCache({ tableName, memory: false, encryption: { keys: { k1: key1 }, writeKeyId: 'k1' } });
    await writer.set('k', 'secret');
    const { cache } = await db.newCache({ tableName, memory: false, encryption: { keys: slowKeys, writeKeyId: 'k1' } });
    const started = performance.now();
    await cache.get('k', { signal: AbortSignal.timeout(200) }).catch(() => undefined);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('a memoized request answers within its invocation, not after the key source', async () => {
    const { invoke } = await setupMiddy(db, async () => json(200, { ok: true }), { encryption: { keys: slowKeys, writeKeyId: 'k1' }, response: { ttlSeconds: 60 } });
    const started = performance.now();
    const response = await invoke(httpApiEvent({ path: '/items' }), lambdaContext('users-api', 1500));
    expect(response.statusCode).toBe(200);
    expect(performance.now() - started).toBeLessThan(1500);
  });
});
