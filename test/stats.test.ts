import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

/** The metric values an EMF document holds, by name (summed: a metric added several times is an array). */
function metricValues(metrics: Metrics): Record<string, number> {
  const emf = metrics.serializeMetrics() as unknown as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }>; Dimensions: string[][] }> } };
  const result: Record<string, number> = {};
  for (const { Name } of emf._aws.CloudWatchMetrics[0]!.Metrics) {
    const value = emf[Name] as number | number[];
    result[Name] = Array.isArray(value) ? value.reduce((a, b) => a + b, 0) : value;
  }
  return result;
}

describe('metrics: a Powertools Metrics instance receives the cache\'s counts', () => {
  it('hits, misses, fetches, stale answers, absorbed errors and lease waits, with no key and no extra dimension', async () => {
    const metrics = new Metrics({ namespace: 'dynamo-cache-test', serviceName: 'orders' });
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName, metrics, staleWhileRevalidateSeconds: 60 });
    await cache.getOrSet('user:42', async () => ({ id: 42 })); // a miss, a fetch
    await cache.get('user:42'); // a memory hit
    await cache.get('absent'); // a miss
    const values = metricValues(metrics);
    expect(values).toMatchObject({ CacheHit: 1, CacheMiss: 2, CacheFetch: 1 });
    const emf = JSON.stringify(metrics.serializeMetrics());
    expect(emf).not.toMatch(/user:42|absent/);
    const dimensions = (metrics.serializeMetrics() as unknown as { _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][] }> } })._aws.CloudWatchMetrics[0]!.Dimensions;
    expect(dimensions).toEqual([['service']]);
    metrics.clearMetrics();

    const { cache: broken } = await db.newCache({ tableName, endpoint: proxy.endpoint, metrics, timeoutMs: 100, breaker: false });
    proxy.setFaults({ throttleRate: 1 });
    expect(await broken.get('user:42')).toBeUndefined();
    expect(metricValues(metrics)).toMatchObject({ CacheErrorAbsorbed: 1, CacheMiss: 1 });
  });

  it('a metrics sink that throws never breaks the cache', async () => {
    const { cache } = await db.newCache({
      metrics: {
        addMetric() {
          throw new Error('metrics exploded');
        },
      },
    });
    expect(await cache.getOrSet('k', async () => 'v')).toBe('v');
    expect(await cache.get('k')).toBe('v');
  });
});
