import { powertoolsLogger } from '../on-demand.ts';

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
 * usual environment (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`), `dynamo-cache` when unset. It is
 * created (and the Powertools package loaded) with the first line to log: a cache that never has to
 * report a failure never loads it.
 */
export function defaultLogger(): CacheLogger {
  let logger: CacheLogger | undefined;
  const real = () => (logger ??= new (powertoolsLogger().Logger)({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'dynamo-cache' }));
  return {
    debug: (message, ...extra) => real().debug(message, ...extra),
    info: (message, ...extra) => real().info(message, ...extra),
    warn: (message, ...extra) => real().warn(message, ...extra),
    error: (message, ...extra) => real().error(message, ...extra),
  };
}
