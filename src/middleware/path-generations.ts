import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { DynamoCache } from '../cache.ts';
import { callBudget, type CallOptions } from '../resilience/call-options.ts';
import { generationKey } from './memo-key.ts';

/** The generation of a path never invalidated (or whose last invalidation outlived every response). */
export const INITIAL_GENERATION = '0';

/** After a failed read, the generation known so far (or none) is used for this long, rather than asking again each time. */
const FAILED_READ_BACKOFF_MS = 1000;

/** Most paths whose generation one environment remembers. */
const MAX_REMEMBERED_PATHS = 10_000;

/** What this environment knows of a path's generation (`undefined`: the read failed), and until when (epoch ms). */
interface Known {
  readonly generation: string | undefined;
  readonly untilMs: number;
}

/**
 * Per-path invalidation (RFC 9111 4.4): every memoized GET/HEAD key holds its path's generation, a random
 * token kept in one cache item per path. A successful unsafe request writes a new token, so every stored
 * variant of the path (any query, `vary` value, identity, domain or stage) becomes unreachable at once; the
 * items expire by their TTL.
 *
 * Each environment remembers a path's token for `refreshMs` and then rereads it (a strongly consistent
 * read, outside the memory tier), so an invalidation made elsewhere is seen within `refreshMs`, the bound
 * the project gives a namespace flush (`memory.ttlSeconds`). The environment that invalidates sees it at once.
 */
export class PathGenerations {
  readonly #cache: DynamoCache;
  readonly #prefix: string;
  readonly #lifetimeSeconds: number;
  readonly #refreshMs: number;
  readonly #known: LRUCache<string, Known>;
  readonly #reading = new Map<string, Promise<string | undefined>>();

  /**
   * @param refreshMs - How long a known token is used before it is read again.
   * @param lifetimeSeconds - How long a token is kept: at least as long as any response stored under the
   *   previous one can be served (TTL plus stale windows), or an expired token would bring them back.
   */
  constructor(cache: DynamoCache, prefix: string, refreshMs: number, lifetimeSeconds: number) {
    this.#cache = cache;
    this.#prefix = prefix;
    this.#lifetimeSeconds = lifetimeSeconds;
    this.#refreshMs = refreshMs;
    // Validity is checked against the wall clock, as the memory tier does; no lru-cache TTL, which would cost a clock read per get.
    this.#known = new LRUCache<string, Known>({ max: MAX_REMEMBERED_PATHS });
  }

  /**
   * The current generation of `path` (canonical, lower case): at once when known, else after one read
   * shared by concurrent callers (under the first one's `call`). `undefined` when it cannot be read and none
   * was known (DynamoDB failing, already logged by the cache, or no time left before the caller's deadline):
   * the request must then not be memoized, as it could be answered with an invalidated response.
   */
  current(path: string, call: CallOptions = {}): string | undefined | Promise<string | undefined> {
    const known = this.#known.get(path);
    if (known !== undefined && Date.now() < known.untilMs) return known.generation;
    let reading = this.#reading.get(path);
    if (reading === undefined) {
      reading = this.#read(path, call).finally(() => this.#reading.delete(path));
      this.#reading.set(path, reading);
    }
    return reading;
  }

  /** Invalidates every stored response of `path`: one write, within `call`. Resolves whether DynamoDB stored it. */
  async invalidate(path: string, call: CallOptions = {}): Promise<boolean> {
    const generation = randomUUID();
    // Known here at once, whatever DynamoDB says: this environment never serves what it just invalidated.
    this.#remember(path, generation, this.#refreshMs);
    return this.#cache.set(generationKey(this.#prefix, path), generation, { ttlSeconds: this.#lifetimeSeconds, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, ...call });
  }

  async #read(path: string, call: CallOptions): Promise<string | undefined> {
    const startedMs = Date.now();
    const info = await this.#cache.inspect(generationKey(this.#prefix, path), call);
    // A concurrent invalidation in this environment is newer than what this read saw.
    const known = this.#known.get(path);
    if (known !== undefined && known.generation !== undefined && known.untilMs > startedMs) return known.generation;
    // A read cut by the caller's deadline says nothing about DynamoDB: the next request reads again at once.
    if (info === undefined && outOfTime(call, this.#cache.deadlineMarginMs)) return known?.generation;
    // A failed read (DynamoDB failing, already logged) keeps the generation known so far for a second, as the
    // namespace generation does; with none known, the path is not memoized meanwhile.
    if (info === undefined || info.state === 'unreadable') return this.#remember(path, known?.generation, FAILED_READ_BACKOFF_MS);
    if (info.state === 'fresh' && typeof info.value === 'string') return this.#remember(path, info.value, this.#refreshMs);
    // Gone: expired (every response under it expired first), or deleted by someone with table access, which
    // must not bring back what an invalidation this environment saw made unreachable.
    return this.#remember(path, known?.generation ?? INITIAL_GENERATION, this.#refreshMs);
  }

  #remember(path: string, generation: string | undefined, forMs: number): string | undefined {
    this.#known.set(path, { generation, untilMs: Date.now() + forMs });
    return generation;
  }
}

/** Whether `call`'s deadline, less the cache's margin, has passed: the cache then skips DynamoDB. */
function outOfTime(call: CallOptions, marginMs: number): boolean {
  const { untilMs } = callBudget(call, marginMs);
  return untilMs !== undefined && Date.now() >= untilMs;
}
