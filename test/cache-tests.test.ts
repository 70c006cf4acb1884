// The HTTP Working Group's cache test suite (cache-tests.fyi, vendored in test/vendor/cache-tests) against the
// middleware as a reverse proxy cache (issue 23): every test, HTTP API events on loopback, the suite's own
// origin server behind the handler. Its required tests are scored as the published results count them,
// beside every published reverse proxy and CDN. The suite is timing-based (it waits 3 s between some
// requests), but its margins are seconds: a slow machine makes no test pass or fail by luck here.
import { describe, expect, it } from 'vitest';
import { localClientConfig } from './support/dynalite.ts';
import { REQUIRED_FAILURES, runCacheTests, type RequiredScore } from './support/cache-tests.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();

const line = (score: RequiredScore) => `${score.name.padEnd(40)} ${String(score.passed).padStart(3)} of ${score.required} (${score.passedWithDependencies} with the results page's dependency rule)`;

describe('the HTTP cache test suite, required tests', () => {
  it('default options with shared: true: at least 150 of 160, above every published cache, none failing but those failing by design', async () => {
    const run = await runCacheTests({ middleware: { tableName: await db.newTable(), clientConfig: localClientConfig(db.endpoint), response: { shared: true } } });
    const failing = run.requiredIds.filter((id) => run.results[id] !== true);
    console.log([`cache-tests in ${run.seconds.toFixed(1)} s`, line(run.score), ...run.published.map(line), ...failing.map((id) => `  fails ${id}: ${JSON.stringify(run.results[id])}`)].join('\n'));
    expect(failing.filter((id) => REQUIRED_FAILURES[id] === undefined).map((id) => [id, run.results[id]])).toEqual([]);
    expect(run.score.required).toBe(160);
    expect(run.score.passed).toBeGreaterThanOrEqual(150);
    expect(run.score.passed).toBeGreaterThan(Math.max(...run.published.map((score) => score.passed)));
  }, 120_000);
});
