import type { ResponseMemoOptions } from '../../src/index.ts';
import { REQUIRED_FAILURES, runCacheTests, type CacheTestsRun } from '../../test/support/cache-tests.ts';
import type { BenchContext, Section } from '../support/report.ts';

/** The configurations run, the first one the headline's (the one `npm test` checks, test/cache-tests.test.ts). */
const CONFIGURATIONS: ReadonlyArray<readonly [string, ResponseMemoOptions]> = [
  ['dynamo-cache, `shared: true` (default options otherwise)', { shared: true }],
  ['dynamo-cache, `shared: true, revalidate: false`', { shared: true, revalidate: false }],
  ['dynamo-cache, `shared: true, requireFreshness: true` (HTTP-proxy mode)', { shared: true, requireFreshness: true }],
];

/**
 * The HTTP Working Group's cache test suite (cache-tests.fyi) against the middleware as a reverse proxy
 * cache, scored on its required tests beside the published results of reverse proxies and a CDN. Not a
 * timing: a conformance figure, written here by the run like every other.
 */
export async function cacheTests(ctx: BenchContext): Promise<Section> {
  const runs: Array<{ name: string; run: CacheTestsRun }> = [];
  for (const [index, [name, response]] of CONFIGURATIONS.entries()) {
    if (ctx.quick && index > 0) break;
    ctx.log(`cache-tests: ${name}`);
    const run = await runCacheTests({ middleware: { tableName: ctx.target.tableName, clientConfig: ctx.target.clientConfig, namespace: `cache-tests-${index}`, response } });
    runs.push({ name, run });
  }
  const headline = runs[0]!.run;
  const best = headline.published[0]!;
  const failing = headline.requiredIds.filter((id) => headline.results[id] !== true);
  const withoutRevalidation = runs[1]?.run.score.passed;
  return {
    id: 'cache-tests',
    title: 'HTTP cache test suite (cache-tests.fyi), required tests',
    summary:
      `The HTTP Working Group's cache test suite (vendored in test/vendor/cache-tests) run against \`dynamoCache()\` as a reverse proxy cache: HTTP API (v2) events through \`middy(forward).use(dynamoCache({ response }))\`, whose handler forwards to the suite's origin server (test/support/cache-tests.ts). ` +
      `Its ${headline.score.required} required tests are counted as the published result files record them; "with the dependency rule" counts as the results page shows them, a test whose prerequisite failed being not run ` +
      '(by default the middleware stores a response without explicit freshness for `ttlSeconds`, so the suite\'s `freshness-none` check, a prerequisite of most tests, says it reuses one; HTTP-proxy mode does not). ' +
      `Each run took ${runs.map(({ run }) => `${run.seconds.toFixed(0)} s`).join(', ')}; \`npm test\` runs the first configuration.`,
    tables: [
      {
        columns: ['cache', 'required tests passed', 'with the dependency rule'],
        rows: [
          ...runs.map(({ name, run }) => [name, `${run.score.passed} of ${run.score.required}`, run.score.passedWithDependencies]),
          ...headline.published.map((score) => [`${score.name} (published)`, `${score.passed} of ${score.required}`, score.passedWithDependencies]),
        ],
      },
      {
        title: 'Required tests the first configuration fails',
        columns: ['test', 'why'],
        rows: failing.map((id) => [id, REQUIRED_FAILURES[id] ?? `unexpected: ${JSON.stringify(headline.results[id])}`]),
      },
    ],
    data: runs.map(({ name, run }) => ({ name, score: run.score, seconds: run.seconds, failing: run.requiredIds.filter((id) => run.results[id] !== true), published: run.published })),
    headlines: [
      `the HTTP Working Group's cache test suite: ${headline.score.passed} of ${headline.score.required} required tests with default options and \`shared: true\`${withoutRevalidation === undefined ? '' : ` (${withoutRevalidation} without revalidation)`}; the best published cache, ${best.name}, passes ${best.passed}`,
    ],
  };
}
