import type { HttpResponse } from './http-response.ts';

/**
 * Response fields that list tags, by lower-case name, with their separators: `Cache-Tag` (comma-separated, as
 * Cloudflare and CloudFront read it) and `Surrogate-Key` (space-separated, as Fastly reads it).
 */
const TAG_FIELDS: Readonly<Record<string, RegExp>> = { 'cache-tag': /,/, 'surrogate-key': /\s/ };

/** The names of the response fields that list tags (lower case). */
export const TAG_HEADERS: readonly string[] = Object.keys(TAG_FIELDS);

/** The tags a response lists in its `Cache-Tag` and `Surrogate-Key` fields (every spelling, every value), without repeats. */
export function headerTags(response: HttpResponse): string[] {
  const tags = new Set<string>();
  const add = (name: string, values: unknown) => {
    const separator = TAG_FIELDS[name.toLowerCase()];
    if (separator === undefined) return;
    for (const value of [values].flat()) {
      for (const tag of String(value).split(separator)) if (tag.trim() !== '') tags.add(tag.trim());
    }
  };
  for (const [name, value] of Object.entries(response.headers ?? {})) add(name, value);
  for (const [name, values] of Object.entries(response.multiValueHeaders ?? {})) add(name, values);
  return [...tags];
}
