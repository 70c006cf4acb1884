import { createHmac, hash } from 'node:crypto';
import { InvalidKeyError, InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';

/** DynamoDB's limit on a String partition key, in UTF-8 bytes. */
export const MAX_PARTITION_KEY_BYTES = 2048;

/**
 * Marks keys the library writes for itself (hashed keys, chunks, leases, generations, namespace metadata),
 * right after the namespace prefix. A caller's key that starts with it, or contains it after a `:`, is
 * hashed: without that, a cache with no namespace could write `orders:#dc:meta`, another namespace's
 * metadata item, and undo its flush.
 */
export const RESERVED_MARKER = '#dc:';

/** Whether a caller's key could name a library item of this or any other namespace. */
function reachesReservedSpace(key: string): boolean {
  return key.startsWith(RESERVED_MARKER) || key.includes(`:${RESERVED_MARKER}`);
}

const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

/** Throws `InvalidKeyError` unless `key` is a non-empty, well-formed Unicode string. */
export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError(`Cache key must be a string, got ${key === null ? 'null' : typeof key}`);
  }
  if (key.length === 0) throw new InvalidKeyError('Cache key must not be empty');
  // DynamoDB stores keys as UTF-8, which a lone surrogate has no form in: two such keys could collide.
  if (!key.isWellFormed()) throw new InvalidKeyError('Cache key must be well-formed Unicode (it contains a lone surrogate)');
}

/**
 * Where one caller key lives for one call: its memory-tier key (the storage key in generation 0, whatever
 * the generation), and its DynamoDB key in the current namespace generation, when that is known.
 */
export interface Slot {
  readonly memoryKey: string;
  /**
   * The namespace generation the memory tier answers entries of: the current one, or, when it could not be read
   * just now, the newest this environment knew (`undefined`: none ever was).
   */
  readonly generation: number | undefined;
  /** `undefined` when the current namespace generation could not be read: DynamoDB is then left out of the call. */
  readonly storageKey: string | undefined;
}

/** Hashed keys (`DynamoCacheOptions.hashKeys`): only an HMAC of each key is stored. */
export interface HashKeysOptions {
  /** The HMAC-SHA256 secret: at least 16 bytes (text is taken as UTF-8). Changing it makes every key a miss. */
  secret: string | Uint8Array;
}

/** Throws `InvalidOptionsError` unless `namespace` is empty or 1-128 of `A-Z a-z 0-9 _ . -`. */
export function assertNamespace(namespace: string): void {
  if (namespace !== '' && !NAMESPACE_PATTERN.test(namespace)) {
    throw new InvalidOptionsError(
      `namespace must be 1-128 characters of A-Z a-z 0-9 _ . - (it becomes the "<namespace>:" key prefix), got ${JSON.stringify(namespace)}`,
    );
  }
}

/** Hex SHA-256 of a string. */
export function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

/**
 * Maps caller keys to the partition keys stored in DynamoDB.
 *
 * The stored key is `<namespace>:` (nothing without a namespace, so an unprefixed key is exactly what the
 * original Python service reads), then the caller's key. The mapping is one-to-one: a key that would
 * exceed DynamoDB's 2048-byte limit, or that could reach the reserved space ({@link RESERVED_MARKER} at its
 * start or after any `:`), is replaced by `#dc:h:<sha256 of the key>`, which no caller key can produce. With `hashKeys`, every key is replaced by
 * `#dc:m:<HMAC of the key>`, so keys never appear in the table in clear. The namespace prefix stays in
 * clear either way (library items too: generations, chunks, metadata), so IAM's `dynamodb:LeadingKeys`
 * can still confine a function to it.
 */
export class KeyMapper {
  /** `"<namespace>:"`, or `""` without a namespace: the prefix every stored key of this cache starts with. */
  readonly prefix: string;
  readonly #hmacSecret: Buffer | undefined;

  constructor(namespace: string, hashKeys?: HashKeysOptions) {
    assertNamespace(namespace);
    this.prefix = namespace === '' ? '' : `${namespace}:`;
    if (hashKeys !== undefined) {
      if (typeof hashKeys === 'object' && hashKeys !== null) assertKnownOptions('hashKeys', hashKeys, ['secret']);
      const secret = typeof hashKeys?.secret === 'string' ? Buffer.from(hashKeys.secret) : hashKeys?.secret instanceof Uint8Array ? Buffer.from(hashKeys.secret) : undefined;
      if (secret === undefined || secret.byteLength < 16) throw new InvalidOptionsError('hashKeys.secret must be at least 16 bytes (a string or a Uint8Array)');
      this.#hmacSecret = secret;
    }
  }

  /**
   * The partition key stored for `key` under namespace generation `generation`. Generation 0 (never
   * flushed) adds nothing, so unflushed keys are the original service's; after `clear()` every key gains a
   * `#dc:g<n>:` part, which no caller key can produce either.
   */
  storageKey(key: string, generation = 0): string {
    const scope = generation === 0 ? this.prefix : `${this.prefix}${RESERVED_MARKER}g${generation}:`;
    if (this.#hmacSecret !== undefined) return `${scope}${RESERVED_MARKER}m:${createHmac('sha256', this.#hmacSecret).update(key).digest('base64url')}`;
    const direct = scope + key;
    if (!reachesReservedSpace(key) && Buffer.byteLength(direct) <= MAX_PARTITION_KEY_BYTES) return direct;
    return `${scope}${RESERVED_MARKER}h:${sha256(key)}`;
  }

  /**
   * The slot of `key` in namespace generation `generation` (`undefined`: it could not be read); `lastKnown`, the
   * newest generation known before, is what memory goes by without it (see `NamespaceGeneration.lastKnown`).
   */
  slot(key: string, generation: number | undefined, memoryKey = this.storageKey(key, 0), lastKnown = generation): Slot {
    return { memoryKey, generation: generation ?? lastKnown, storageKey: generation === undefined ? undefined : generation === 0 ? memoryKey : this.storageKey(key, generation) };
  }

  /** The partition key of the namespace's metadata item (its generation counter). */
  get metaKey(): string {
    return `${this.prefix}${RESERVED_MARKER}meta`;
  }

  /**
   * The partition key of the refresh lease of the value stored under `storageKey`: a separate, small item,
   * so that taking a lease costs one write unit whatever the size of the value.
   */
  leaseKey(storageKey: string): string {
    return `${this.prefix}${RESERVED_MARKER}l:${hash('sha256', storageKey, 'base64url')}`;
  }

  /**
   * How a value's item names `tag` (see `TagStamps`): the tag itself, or with `hashKeys` its HMAC, so that tags
   * (which often hold ids: `user:42`) never appear in the table in clear either.
   */
  tagId(tag: string): string {
    return this.#hmacSecret === undefined ? tag : createHmac('sha256', this.#hmacSecret).update(`#dc:t:${tag}`).digest('base64url');
  }

  /** The partition key of the state of the tag named `tagId` (see `tagId`): one small item per tag, outside every namespace generation. */
  tagKey(tagId: string): string {
    return `${this.prefix}${RESERVED_MARKER}t:${tagId}`;
  }

  /** The partition key of chunk `index` of the large value stored under `generation`. */
  chunkKey(generation: string, index: number): string {
    return `${this.prefix}${RESERVED_MARKER}c:${generation}:${index}`;
  }
}
