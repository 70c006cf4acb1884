import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generationKey } from '../src/middleware/memo-key.ts';
import { INITIAL_GENERATION, PathGenerations } from '../src/middleware/path-generations.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

afterEach(() => {
  vi.useRealTimers();
});

describe('path generations', () => {
  it('a path starts at the initial generation; an invalidation is a new one, seen at once here and after refreshMs elsewhere', async () => {
    const { tableName } = await db.newCache();
    const here = new PathGenerations((await db.newCache({ tableName })).cache, 'fn', 10_000, 120);
    const elsewhere = new PathGenerations((await db.newCache({ tableName })).cache, 'fn', 10_000, 120);
    expect(await here.current('/items/1')).toBe(INITIAL_GENERATION);
    expect(await elsewhere.current('/items/1')).toBe(INITIAL_GENERATION);
    vi.useFakeTimers({ toFake: ['Date'] });
    expect(await here.invalidate('/items/1')).toBe(true);
    const next = here.current('/items/1');
    expect(typeof next).toBe('string');
    expect(next).not.toBe(INITIAL_GENERATION);
    expect(elsewhere.current('/items/1')).toBe(INITIAL_GENERATION); // still trusted: within refreshMs
    vi.setSystemTime(Date.now() + 10_001);
    expect(await elsewhere.current('/items/1')).toBe(next);
    expect(await elsewhere.current('/items/2')).toBe(INITIAL_GENERATION);
  });

  it('another prefix has its own generations', async () => {
    const { cache } = await db.newCache();
    await new PathGenerations(cache, 'fn-a', 10_000, 120).invalidate('/x');
    expect(await new PathGenerations(cache, 'fn-b', 10_000, 120).current('/x')).toBe(INITIAL_GENERATION);
  });

  it('when DynamoDB fails, the generation known so far is kept; with none known, the path has none (not memoized)', async () => {
    const { cache, logger } = await db.newCache({ endpoint: proxy.endpoint, breaker: false });
    const generations = new PathGenerations(cache, 'fn', 10_000, 120);
    await generations.invalidate('/known');
    const known = generations.current('/known');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 10_001);
    proxy.setFaults({ validationErrorRate: 1, operations: ['GetItem', 'BatchGetItem'] });
    expect(await generations.current('/known')).toBe(known);
    expect(await generations.current('/unknown')).toBeUndefined();
    expect(logger.warnings.length).toBeGreaterThan(0);
    proxy.setFaults({});
    expect(generations.current('/unknown')).toBeUndefined(); // not asked again for a second
    vi.setSystemTime(Date.now() + 1_001);
    expect(await generations.current('/unknown')).toBe(INITIAL_GENERATION);
  });

  it("a generation item deleted by someone with table access does not bring an invalidated path's old responses back where the invalidation was seen", async () => {
    const { tableName } = await db.newCache();
    const here = new PathGenerations((await db.newCache({ tableName })).cache, 'fn', 10_000, 120);
    const elsewhere = new PathGenerations((await db.newCache({ tableName })).cache, 'fn', 10_000, 120);
    await here.invalidate('/account');
    const invalidated = here.current('/account');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 10_001);
    expect(await elsewhere.current('/account')).toBe(invalidated);
    await db.client.send(new DeleteItemCommand({ TableName: tableName, Key: { id: { S: generationKey('fn', '/account') } } }));
    vi.setSystemTime(Date.now() + 10_001);
    expect(await here.current('/account')).toBe(invalidated);
    expect(await elsewhere.current('/account')).toBe(invalidated);
    // A cold environment cannot tell a deleted item from one that expired (docs/integrity.md).
    const cold = new PathGenerations((await db.newCache({ tableName })).cache, 'fn', 10_000, 120);
    expect(await cold.current('/account')).toBe(INITIAL_GENERATION);
  });
});
