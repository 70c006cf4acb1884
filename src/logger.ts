import { Logger } from '@aws-lambda-powertools/logger';

/**
 * What the cache needs from a logger: the four level methods of a Powertools `Logger`, whose instances
 * satisfy it as they are. Extra arguments are structured fields added to the log line.
 */
export interface CacheLogger {
  debug(message: string, ...extra: unknown[]): void;
  info(message: string, ...extra: unknown[]): void;
  warn(message: string, ...extra: unknown[]): void;
  error(message: string, ...extra: unknown[]): void;
}

/**
 * The logger used when none is given: a Powertools `Logger` whose service name and level come from the
 * usual environment (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`), `dynamo-cache` when unset.
 */
export function defaultLogger(): CacheLogger {
  return new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'dynamo-cache' });
}
