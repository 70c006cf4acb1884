import { InvalidOptionsError } from './errors.ts';

/**
 * Names people reach for that mean one of ours: TypeScript catches a misspelled option at compile time,
 * but a JavaScript caller's `{ ttl: 60 }` would otherwise be ignored without a word and the default used.
 */
const SYNONYMS: Readonly<Record<string, readonly string[]>> = {
  ttl: ['ttlSeconds', 'defaultTtlSeconds'],
  expiry: ['ttlSeconds', 'defaultTtlSeconds'],
  expires: ['ttlSeconds', 'defaultTtlSeconds'],
  expiresin: ['ttlSeconds', 'defaultTtlSeconds'],
  maxage: ['ttlSeconds', 'defaultTtlSeconds'],
  cacheexpiry: ['ttlSeconds', 'defaultTtlSeconds'],
  timeout: ['timeoutMs'],
  table: ['tableName'],
  prefix: ['namespace', 'keyPrefix'],
  max: ['maxEntries'],
  size: ['maxBytes', 'maxEntries'],
};

/**
 * Throws `InvalidOptionsError` for any own property of `options` not in `known`, naming the closest known
 * one ("did you mean ...?") when there is one. `where` says whose options they are (`new DynamoCache()`,
 * `set()`, `response.routes["GET /x"]`).
 */
export function assertKnownOptions(where: string, options: object, known: readonly string[]): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const suggestion = closest(name, known);
    throw new InvalidOptionsError(`Unknown option "${name}" in ${where}${suggestion === undefined ? `; known options: ${known.join(', ')}` : `; did you mean "${suggestion}"?`}`);
  }
}

/** The known name `name` most likely stands for: same letters in another case, a synonym, a prefix, or a near spelling. */
function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const folded = (candidate: string) => candidate.toLowerCase();
  const exact = known.find((candidate) => folded(candidate) === lower);
  if (exact !== undefined) return exact;
  const synonym = SYNONYMS[lower.replace(/[_-]/g, '')]?.find((candidate) => known.includes(candidate));
  if (synonym !== undefined) return synonym;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const other = folded(candidate);
    const prefix = lower.length >= 3 && (other.startsWith(lower) || lower.startsWith(other));
    const shared = sharedPrefix(lower, other);
    const sameStem = shared >= 4 && shared >= 0.6 * Math.min(lower.length, other.length);
    const distance = prefix ? 1 : sameStem ? 2 : editDistance(lower, other);
    if (distance <= Math.max(2, Math.floor(other.length / 3)) && (best === undefined || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

function sharedPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Levenshtein distance, with a transposition counted as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
    }
  }
  return rows[a.length]![b.length]!;
}
