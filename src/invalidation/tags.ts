import { hash } from 'node:crypto';
import { InvalidOptionsError } from '../errors.ts';

/** Most tags one value may carry (CloudFront allows 50 per object, Fastly's surrogate keys about 1 KB). */
export const MAX_TAGS_PER_VALUE = 64;

/** Longest tag, in characters (Unicode code points: an emoji or a CJK character counts one). */
export const MAX_TAG_CHARACTERS = 256;

/** C0 controls, DEL and C1 controls: never part of a tag (a header could not carry them, a log would mangle them). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why `tag` is not a tag, or `undefined` when it is one: a string of 1 to 256 Unicode code points,
 * well-formed (no lone surrogate: DynamoDB stores UTF-8, which has no form for one) and free of control
 * characters. Anything else goes (spaces, commas, `:`...), and letter case counts: `User:42` is not `user:42`.
 */
export function tagProblem(tag: unknown): string | undefined {
  if (typeof tag !== 'string') return `a tag must be a string, got ${tag === null ? 'null' : typeof tag}`;
  if (tag.length === 0) return 'a tag must not be empty';
  // length counts UTF-16 code units, at least one per code point: only a long string needs counting.
  if (tag.length > MAX_TAG_CHARACTERS && [...tag].length > MAX_TAG_CHARACTERS) return `a tag has at most ${MAX_TAG_CHARACTERS} characters, got ${[...tag].length}`;
  if (!tag.isWellFormed()) return 'a tag must be well-formed Unicode (it contains a lone surrogate)';
  if (CONTROL.test(tag)) return `a tag must not contain control characters (${JSON.stringify(tag.slice(0, 40))})`;
  return undefined;
}

/**
 * Checks the tags given to `set`, `getOrSet`, `wrap`, `acquire` or `invalidateTags` and returns them without
 * repeats, in the order given.
 * @throws InvalidOptionsError for anything but an array of at most `maxTags` distinct tags (see `tagProblem`).
 */
export function assertTags(name: string, tags: unknown, maxTags = MAX_TAGS_PER_VALUE): readonly string[] {
  if (maxTags >= MAX_TAGS_PER_VALUE && CHECKED.has(tags as readonly string[])) return tags as readonly string[];
  if (!Array.isArray(tags)) throw new InvalidOptionsError(`${name} must be an array of strings, got ${tags === null ? 'null' : typeof tags}`);
  for (let index = 0; index < tags.length; index++) {
    const problem = tagProblem(tags[index]);
    if (problem !== undefined) throw new InvalidOptionsError(`${name}[${index}]: ${problem}`);
  }
  const distinct = tags.length < 2 || new Set(tags).size === tags.length ? (tags as string[]) : [...new Set(tags as string[])];
  if (distinct.length > maxTags) throw new InvalidOptionsError(`${name}: at most ${maxTags} tags per value, got ${distinct.length}`);
  if (distinct === tags && distinct.length <= MAX_TAGS_PER_VALUE && Object.isFrozen(tags)) CHECKED.add(tags);
  return distinct;
}

/**
 * Frozen arrays already found to be distinct valid tags, at most `MAX_TAGS_PER_VALUE`: a frozen array cannot
 * change, so the middleware's implied tags, passed on every request, are checked once.
 */
const CHECKED = new WeakSet<readonly string[]>();

/**
 * A tag the library derives from something longer than a tag (a request path, a route): `#dc:<kind>:` and the
 * SHA-256 of the text (43 characters of base64url), a valid tag no one writes by accident.
 */
export function derivedTag(kind: string, text: string): string {
  return `#dc:${kind}:${hash('sha256', text, 'base64url')}`;
}
