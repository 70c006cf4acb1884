import type { DynamoTarget } from './dynamo-target.ts';
import type { MeasureOptions } from './measure.ts';

/** A table of measured figures; a cell may say why a contender could not run. */
export interface Table {
  readonly title?: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | number>>;
}

/** A generated chart. */
export interface Chart {
  readonly file: string;
  readonly svg: string;
  readonly alt: string;
}

/** One scenario's results: prose, tables, charts, and every figure as data for the JSON file. */
export interface Section {
  readonly id: string;
  readonly title: string;
  readonly summary: string;
  readonly tables: readonly Table[];
  readonly charts?: readonly Chart[];
  readonly data: unknown;
  /** One-line headline claims computed from the figures, for the README. */
  readonly headlines?: readonly string[];
}

/** What every scenario gets. */
export interface BenchContext {
  readonly target: DynamoTarget;
  readonly quick: boolean;
  readonly measure: MeasureOptions;
  log(message: string): void;
}

/** Formats a number for a table: ms with 3 significant digits, counts as integers. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return value.toFixed(0);
  if (value >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

/** `ratio(value, floor)` as `0.42x`. */
export function ratio(value: number, floor: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(floor) || floor === 0) return 'n/a';
  return `${(value / floor).toFixed(value / floor >= 10 ? 0 : 2)}x`;
}

export function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/** Renders a table as Markdown (numbers right-aligned). */
export function markdownTable(table: Table): string {
  const header = `| ${table.columns.join(' | ')} |`;
  const rule = `|${table.columns.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`;
  const body = table.rows.map((row) => `| ${row.map((cell) => String(cell).replace(/\|/g, '\\|')).join(' | ')} |`);
  return [...(table.title ? [`**${table.title}**`, ''] : []), header, rule, ...body].join('\n');
}
