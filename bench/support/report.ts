import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

/** A section as BENCHMARKS.md shows it: heading, summary, tables and charts. */
export function renderSection(section: Section): string[] {
  return [
    `## ${section.title}`,
    '',
    section.summary,
    '',
    ...section.tables.flatMap((table) => [markdownTable(table), '']),
    ...(section.charts ?? []).flatMap((chart) => [`![${chart.alt}](bench/charts/${chart.file})`, '']),
  ];
}

/** The anchor GitHub gives a heading. */
export function anchor(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

/** The headline list item of `line`, linking its section. */
export function headlineItem(section: Section, line: string): string {
  return `- ${line} ([${section.title}](#${anchor(section.title)}))`;
}

/**
 * Writes one section, measured by `command` alone, into BENCHMARKS.md and bench/results.json in place of the
 * same section of the last full run (`npm run bench`), whose other sections stay as they were; its
 * headlines replace that section's. The section says which command measured it, and when.
 */
export async function writeSection(section: Section, command: string): Promise<void> {
  const root = join(import.meta.dirname, '..', '..');
  const date = new Date().toISOString();
  const path = join(root, 'BENCHMARKS.md');
  const lines = (await readFile(path, 'utf8')).split('\n');
  const rendered = renderSection({ ...section, summary: `Measured by \`${command}\` on ${date.slice(0, 10)} (the other sections by the run named at the top). ${section.summary}` });
  const start = lines.indexOf(`## ${section.title}`);
  const end = start === -1 ? -1 : lines.findIndex((line, i) => i > start && line.startsWith('## '));
  if (start === -1) lines.push('', ...rendered);
  else lines.splice(start, (end === -1 ? lines.length : end) - start, ...rendered);
  const link = `](#${anchor(section.title)}))`;
  const headlines = lines.flatMap((line, i) => (line.startsWith('- ') && line.endsWith(link) ? [i] : []));
  const items = (section.headlines ?? []).map((line) => headlineItem(section, line));
  if (headlines.length > 0) lines.splice(headlines[0]!, headlines.length, ...items);
  await writeFile(path, lines.join('\n'));
  const resultsPath = join(root, 'bench', 'results.json');
  const results = JSON.parse(await readFile(resultsPath, 'utf8'));
  const entry = { id: section.id, title: section.title, data: section.data, measuredBy: { command, date } };
  const at = results.sections.findIndex((s: { id: string }) => s.id === section.id);
  if (at === -1) results.sections.push(entry);
  else results.sections[at] = entry;
  await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
}
