import { afterEach, beforeEach, vi } from 'vitest';

/** One JSON line a Powertools utility wrote: a log entry, or a CloudWatch EMF blob. */
export type OutputLine = Record<string, any>;

/** What {@link usePowertoolsOutput} gives a test file. */
export interface PowertoolsOutput {
  /** The JSON lines written since the previous call (or the test's start), in order. */
  take(): OutputLine[];
}

/**
 * Captures stdout and stderr for each test: Powertools' Logger and Metrics write their JSON lines there
 * (through their own `Console`, as in Lambda), so tests read exactly what CloudWatch would receive.
 */
export function usePowertoolsOutput(): PowertoolsOutput {
  let lines: OutputLine[] = [];
  beforeEach(() => {
    lines = [];
    const capture = (chunk: string | Uint8Array) => {
      for (const text of String(chunk).split('\n')) {
        if (text.startsWith('{')) lines.push(JSON.parse(text) as OutputLine);
      }
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return {
    take() {
      const taken = lines;
      lines = [];
      return taken;
    },
  };
}

/** The metrics of the EMF blobs among `lines`, as `{ name: value }` per blob. */
export function emfMetrics(lines: readonly OutputLine[]): Array<Record<string, unknown>> {
  return lines
    .filter((line) => line._aws?.CloudWatchMetrics !== undefined)
    .map((line) => {
      const names: string[] = line._aws.CloudWatchMetrics.flatMap((directive: { Metrics: Array<{ Name: string }> }) => directive.Metrics.map((metric) => metric.Name));
      return Object.fromEntries(names.map((name) => [name, line[name]]));
    });
}

/** The log entries among `lines` (Powertools Logger's JSON: `level`, `message`, keys...). */
export function logEntries(lines: readonly OutputLine[]): OutputLine[] {
  return lines.filter((line) => typeof line.level === 'string' && typeof line.message === 'string');
}
