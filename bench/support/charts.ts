/**
 * Small SVG charts generated from measured figures (no hand-drawn numbers): horizontal bars for one
 * measure per contender, and grouped columns for a measure per contender and condition.
 */

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"';
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7'];

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One bar per row and series (e.g. p50 and p99 per contender), on a log or linear axis. */
export function barChart(title: string, unit: string, rows: Array<{ label: string; values: number[] }>, series: string[], options: { log?: boolean } = {}): string {
  const labelWidth = 260;
  const plotWidth = 480;
  const barHeight = 14;
  const rowHeight = series.length * (barHeight + 2) + 10;
  const top = 48;
  const height = top + rows.length * rowHeight + 40;
  const all = rows.flatMap((row) => row.values).filter((v) => Number.isFinite(v) && v > 0);
  const max = Math.max(...all, 1e-9);
  const min = Math.min(...all, max);
  const log = options.log ?? max / min > 50;
  const lo = log ? Math.log10(min) - 0.3 : 0;
  const hi = log ? Math.log10(max) + 0.1 : max * 1.05;
  const scale = (v: number) => (Number.isFinite(v) && v > 0 ? (((log ? Math.log10(v) : v) - lo) / (hi - lo)) * plotWidth : 0);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 120}" height="${height}" ${FONT}>`, `<rect width="100%" height="100%" fill="white"/>`];
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${escape(title)}</text>`);
  parts.push(`<text x="10" y="38" fill="#555">${escape(`${unit}${log ? ' (log scale)' : ''}`)}</text>`);
  rows.forEach((row, r) => {
    const y = top + r * rowHeight;
    parts.push(`<text x="${labelWidth - 8}" y="${y + rowHeight / 2}" text-anchor="end" dominant-baseline="middle">${escape(row.label)}</text>`);
    row.values.forEach((value, i) => {
      const width = Math.max(1, scale(value));
      const by = y + i * (barHeight + 2);
      parts.push(`<rect x="${labelWidth}" y="${by}" width="${width.toFixed(1)}" height="${barHeight}" fill="${PALETTE[i % PALETTE.length]}"/>`);
      parts.push(`<text x="${labelWidth + width + 4}" y="${by + barHeight - 3}" fill="#333">${Number.isFinite(value) ? format(value) : 'n/a'}</text>`);
    });
  });
  parts.push(legend(series, 10, height - 16));
  parts.push('</svg>');
  return parts.join('\n');
}

/** Columns grouped by condition (e.g. hit ratio), one column per contender. */
export function groupedColumns(title: string, unit: string, conditions: string[], series: Array<{ name: string; values: number[] }>): string {
  const left = 60;
  const groupWidth = Math.max(120, series.length * 22 + 30);
  const plotHeight = 260;
  const top = 48;
  const width = left + conditions.length * groupWidth + 20;
  const legendRows = Math.ceil(series.length / 2);
  const height = top + plotHeight + 40 + legendRows * 18;
  const max = niceCeiling(Math.max(...series.flatMap((s) => s.values).filter(Number.isFinite), 1));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(width, 640)}" height="${height}" ${FONT}>`, `<rect width="100%" height="100%" fill="white"/>`];
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${escape(title)}</text>`);
  parts.push(`<text x="10" y="38" fill="#555">${escape(unit)}</text>`);
  for (let tick = 0; tick <= 4; tick++) {
    const value = (max * tick) / 4;
    const y = top + plotHeight - (value / max) * plotHeight;
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" fill="#555">${format(value)}</text>`);
  }
  const columnWidth = (groupWidth - 30) / series.length;
  conditions.forEach((condition, c) => {
    const x0 = left + c * groupWidth + 15;
    series.forEach((s, i) => {
      const value = s.values[c] ?? Number.NaN;
      const h = Number.isFinite(value) ? (value / max) * plotHeight : 0;
      parts.push(`<rect x="${(x0 + i * columnWidth).toFixed(1)}" y="${(top + plotHeight - h).toFixed(1)}" width="${(columnWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escape(`${s.name}: ${format(value)}`)}</title></rect>`);
    });
    parts.push(`<text x="${x0 + (groupWidth - 30) / 2}" y="${top + plotHeight + 16}" text-anchor="middle">${escape(condition)}</text>`);
  });
  series.forEach((s, i) => {
    const x = 10 + (i % 2) * 330;
    const y = top + plotHeight + 40 + Math.floor(i / 2) * 18;
    parts.push(`<rect x="${x}" y="${y - 10}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${x + 14}" y="${y}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function legend(series: string[], x: number, y: number): string {
  return series.map((s, i) => `<rect x="${x + i * 120}" y="${y - 10}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${x + i * 120 + 14}" y="${y}">${escape(s)}</text>`).join('');
}

function format(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

/** The smallest 1, 2, 2.5 or 5 × 10^n at or above `value`, so that quarter ticks are round numbers. */
function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * magnitude >= value)!;
  return step * magnitude;
}
