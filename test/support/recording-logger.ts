import type { CacheLogger } from '../../src/observability/logger.ts';

/** One call to a {@link RecordingLogger}. */
export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

/** A logger that keeps what it is given, so tests can assert that a failure was reported. */
export class RecordingLogger implements CacheLogger {
  readonly entries: LogEntry[] = [];

  debug(message: string, ...extra: unknown[]): void {
    this.#push('debug', message, extra);
  }
  info(message: string, ...extra: unknown[]): void {
    this.#push('info', message, extra);
  }
  warn(message: string, ...extra: unknown[]): void {
    this.#push('warn', message, extra);
  }
  error(message: string, ...extra: unknown[]): void {
    this.#push('error', message, extra);
  }

  /** Warnings logged so far. */
  get warnings(): LogEntry[] {
    return this.entries.filter((entry) => entry.level === 'warn');
  }

  #push(level: LogEntry['level'], message: string, extra: unknown[]): void {
    this.entries.push({ level, message, fields: Object.assign({}, ...extra.filter((e) => typeof e === 'object')) });
  }
}
