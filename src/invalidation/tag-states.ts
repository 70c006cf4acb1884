import { randomBytes } from 'node:crypto';
import { InvalidOptionsError } from '../errors.ts';
import type { Keyring } from '../codec/encryption.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { StatsRecorder } from '../observability/stats.ts';
import { callEnded, withinCall } from '../resilience/abort.ts';
import type { CallBudget, FailureKind } from '../resilience/dynamo-guard.ts';
import type { DynamoStore, Item, WriteCondition } from '../storage/dynamo-store.ts';
import type { CacheEntry } from '../storage/entry.ts';
import type { AttributeNames, TagStamps } from '../storage/item.ts';
import type { KeyMapper } from '../storage/keys.ts';
import { TAG_ATTRIBUTES, tagItem, tagStateOf, tagStateText, type TagState } from './tag-item.ts';

/** How `invalidateTags` treats the values of a tag: never served again, or served stale while one caller refreshes. */
export type InvalidationMode = 'expire' | 'stale';

/** Checks a `mode` option (`'expire'` when absent). */
export function invalidationMode(name: string, mode: unknown): InvalidationMode {
  if (mode === undefined || mode === 'expire' || mode === 'stale') return mode ?? 'expire';
  throw new InvalidOptionsError(`${name} must be 'expire' or 'stale', got ${String(mode)}`);
}

/**
 * The tokens a fetch turn captured when it started, by tag id (`null`: the tag had no state then; a tag whose
 * state was never read here is left out): a value is stamped with the states it was fetched under.
 */
export type CapturedTags = ReadonlyMap<string, string | null>;

/** The tags a fetched value is to be stored with, and their states as captured when its fetch started. */
export interface Tagging {
  readonly tags: readonly string[];
  readonly captured: Promise<CapturedTags> | undefined;
}

/** Settings of {@link TagStates}. */
export interface TagStatesSettings {
  readonly dynamo: DynamoStore;
  readonly keys: KeyMapper;
  readonly attributes: AttributeNames;
  /** With encryption, tag items are signed and unsigned ones ignored (as leases are). */
  readonly keyring: Keyring | undefined;
  /** How long a state read here is relied on before it is read again: `memory.ttlSeconds`. */
  readonly refreshMs: number;
  readonly stats: StatsRecorder;
  readonly logger: CacheLogger;
}

/**
 * The states a value needs could not be read (DynamoDB failed, as `unavailable` says, or the caller's deadline or
 * signal ended the wait): no verdict either way.
 */
export interface Unjudged {
  readonly unavailable: FailureKind;
}

/** A read of tag states in flight, shared by the callers that need them: it resolves why it failed, if it did. */
interface Reading {
  readonly startedMs: number;
  readonly done: Promise<FailureKind | undefined>;
}

/** What this environment knows of one tag. */
interface Known {
  /** The state values are judged by; `undefined` when there is none to trust: no item, one that does not authenticate, or one older than seen here. */
  readonly state: TagState | undefined;
  /** The token of the item in the table as last seen, trusted or not (`undefined`: no item; `null`: an item without one): a replacement is conditional on it. */
  readonly present: string | null | undefined;
  /** The highest version seen here: state only moves forward, an older item put back is not taken for the truth. */
  readonly maxVersion: number;
  /** When it was learnt (the start of the read that found it, or the write), epoch ms. */
  readonly learntMs: number;
  /** Until when (epoch ms) it may be relied on: learnt + `refreshMs`. */
  readonly untilMs: number;
  /** `state` is the first state of the tag, written by this environment where there was none. */
  readonly createdHere?: boolean;
}

/** Tags whose state one environment remembers; beyond that the oldest learnt is forgotten (and read again when met). */
const MAX_KNOWN_TAGS = 10_000;
/** After a failed read, no tag state is read again for this long: one failure costs one time budget, not one per call. */
const FAILED_READ_BACKOFF_MS = 1000;
/** A tag item lives at least this long; a value that would outlive it extends it first (one write, about once a week per tag in use). */
const TAG_LIFETIME_SECONDS = 7 * 24 * 3600;
/** A tag item is extended when it would expire less than this after a value written under it. */
const EXTEND_MARGIN_SECONDS = 24 * 3600;
/** Earlier states whose values a soft purge keeps servable stale. */
const MAX_SOFT_TOKENS = 8;
/** Conditional writes of one state before giving up (each lost to a concurrent writer). */
const WRITE_ATTEMPTS = 3;

/**
 * The invalidation state of tags, as one execution environment knows it.
 *
 * Each tag has one small item holding its state: a version and a random token. A value written with the tag
 * records the token (its stamp); it is fresh only while the tag's item exists with that same token. An
 * invalidation writes a new state (a new token, a higher version; one write): every value of the old token
 * stops being fresh at once, for every function that shares the table and namespace. In soft mode the new
 * state lists the old token as soft: its values are served stale, within their stale windows, while one caller
 * refreshes them (the lease).
 *
 * Deleting a tag item (by hand, or by DynamoDB's TTL) leaves no state: values recording any token are then
 * invalid, never valid again (a later write creates a new state with a new token). Each environment remembers
 * the highest version it saw, so an old item put back is ignored (and replaced on the next write under the
 * tag); a cold environment cannot tell an old item put back from the truth. With encryption the items are
 * signed (as leases are), so nobody without the keys can write a state this cache accepts.
 *
 * States are read with strongly consistent reads, for all the tags a value needs at once (BatchGetItem), and
 * relied on for `refreshMs` (`memory.ttlSeconds`): an invalidation elsewhere is seen here within it, the bound
 * the cache gives `delete` and a namespace flush, as long as DynamoDB answers. Reads and writes never throw. A
 * state that cannot be read leaves its values unjudged, as a value DynamoDB could not give: the caller answers
 * what memory holds as the states last known here allow, even when due for a reread (never a value they show
 * invalidated), or waits; pressure on a hot tag's item must not send the fleet to the upstream. A value whose
 * tags' state cannot be had is not stored.
 */
export class TagStates {
  readonly #s: TagStatesSettings;
  readonly #known = new Map<string, Known>();
  /** Reads in flight, by tag id. */
  readonly #reading = new Map<string, Reading>();
  /** After a failed read, none is made before `atMs`: callers meanwhile are told the read's `failure`. */
  #retry: { readonly atMs: number; readonly failure: FailureKind } = { atMs: 0, failure: 'server' };

  constructor(settings: TagStatesSettings) {
    this.#s = settings;
  }

  /**
   * The entry when each of its tags is known, now, to hold the token it records; otherwise `undefined`
   * (invalidated, soft-invalidated, or a state not known: the memory tier serves fresh values only, and the
   * caller reads DynamoDB instead). Synchronous: the memory tier's hit path awaits nothing.
   */
  fresh(entry: CacheEntry, nowMs: number): CacheEntry | undefined {
    return this.verdict(entry, nowMs) === entry ? entry : undefined;
  }

  /**
   * The entry as its tags allow it to be answered: as it is; stale from the time of a soft purge of one of its
   * tags (its freshness cut there, so its stale windows run from then); or `undefined` when a tag was
   * invalidated. States not known here are read first (one BatchGetItem), and so are states the entry was
   * written under that are newer than what this environment knows (a state's version, in its token, is the
   * time it was written): such an entry tells of an invalidation, or a new tag, before `refreshMs` is over.
   * When a state it needs cannot be read (DynamoDB failing, or the caller's deadline or signal ending the wait),
   * there is no verdict (`Unjudged`, with why): the value is not known to be gone.
   */
  judge(entry: CacheEntry, call: CallBudget): CacheEntry | undefined | Unjudged | Promise<CacheEntry | undefined | Unjudged> {
    const now = Date.now();
    const reads: Array<readonly [id: string, notBeforeMs: number]> = [];
    for (const [id, token] of entry.tags ?? []) {
      const known = this.#known.get(id);
      if (known === undefined || known.untilMs <= now) reads.push([id, 0]);
      else if (known.state?.token !== token && versionOf(token) > known.learntMs) reads.push([id, versionOf(token)]);
    }
    if (reads.length === 0) return this.verdict(entry, now);
    return this.#load(reads, call).then((failure) => {
      const verdict = this.verdict(entry, Date.now());
      return verdict === undefined && failure !== undefined ? { unavailable: failure } : verdict;
    });
  }

  /** Starts reading the states of `tags` not known here, without waiting: a read of a value under them then finds them known, or being read. */
  prefetch(tags: readonly string[], call: CallBudget): void {
    // Called on every call with tags, memory hits included: nothing to start when every state is known.
    const now = Date.now();
    let unknown: Array<readonly [id: string, notBeforeMs: number]> | undefined;
    for (let i = 0; i < tags.length; i++) {
      const id = this.#s.keys.tagId(tags[i]!);
      if (!((this.#known.get(id)?.untilMs ?? 0) > now)) (unknown ??= []).push([id, 0]);
    }
    if (unknown !== undefined) void this.#load(unknown, call);
  }

  /**
   * The current token of each tag (`null` for a tag with no state this environment can use), read when not
   * known: the states a value whose fetch starts at `startedMs` is stamped with. The fetch does not wait for
   * them, so a state read meanwhile that was written after `startedMs` (an invalidation the value may predate)
   * is not taken. When a reread fails, the state last known here stands: a value stamped with a state older than
   * the tag's is never fresh where the newer one is known (at worst a miss), while a value never stored under
   * pressure sends every environment to the upstream. A tag left out (see `stamps`) is settled when the value is
   * stored. Nothing is written: a fetch whose value is not stored leaves no item.
   */
  async capture(tags: readonly string[], call: CallBudget, startedMs = Date.now()): Promise<CapturedTags> {
    const ids = tags.map((tag) => this.#s.keys.tagId(tag));
    await this.#loadUnknown(ids, call);
    const captured = new Map<string, string | null>();
    for (const id of ids) {
      const known = this.#known.get(id);
      if (known !== undefined && (known.state === undefined || known.state.version < startedMs)) captured.set(id, known.state?.token ?? null);
    }
    return captured;
  }

  /**
   * The stamps of a value written with `tags` that expires at `expiresAtSeconds`. A fetched value is stamped
   * with the tokens `captured` when its fetch started (at `fetchStartedMs`), never with a state written after
   * that: it may be an invalidation the value predates. So a tag that had no state at the capture gets one now,
   * which must be this write's own; a tag not captured (its state could not be read then, or the fetcher added
   * it) takes the current state only if it was written before the fetch started (a state's version is the
   * time it was written), or, having none, gets one. A value not fetched (`set`) takes the current states. A
   * tag item that would expire before the value is extended first. `undefined` when a state could not be had,
   * or is newer than the fetch: the value must not be stored.
   */
  async stamps(tags: readonly string[], captured: CapturedTags | undefined, expiresAtSeconds: number, call: CallBudget, fetchStartedMs = Number.POSITIVE_INFINITY): Promise<TagStamps | undefined> {
    const ids = [...new Set(tags.map((tag) => this.#s.keys.tagId(tag)))];
    await this.#loadUnknown(
      ids.filter((id) => typeof captured?.get(id) !== 'string'),
      call,
    );
    const tokens = await Promise.all(
      ids.map((id) => {
        const token = captured?.get(id);
        return typeof token === 'string' ? token : this.#replace(id, undefined, call, token === null ? Number.NEGATIVE_INFINITY : fetchStartedMs);
      }),
    );
    if (tokens.some((token) => token === undefined)) return undefined;
    const stamps = ids.map((id, index): [string, string] => [id, tokens[index]!]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await Promise.all(stamps.map(([id, token]) => this.#outlive(id, token, expiresAtSeconds, call)));
    return stamps;
  }

  /**
   * Invalidates `tags`: one conditional write of a new state each, in parallel (two or three when another
   * writer got in first; a soft purge reads the state first when it is not known here). This environment
   * sees it at once. Resolves whether every state was written; one that was not is dropped here (its values
   * are misses in this environment, and the next value written under the tag replaces the state).
   */
  async invalidate(tags: readonly string[], mode: InvalidationMode, call: CallBudget): Promise<boolean> {
    const ids = [...new Set(tags.map((tag) => this.#s.keys.tagId(tag)))];
    if (mode === 'stale') await this.#loadUnknown(ids, call);
    const tokens = await Promise.all(ids.map((id) => this.#replace(id, mode, call)));
    return tokens.every((token) => token !== undefined);
  }

  /** Reads the states of `ids` this environment cannot rely on now; resolves why one could not be read, if one could not. */
  #loadUnknown(ids: readonly string[], call: CallBudget): Promise<FailureKind | undefined> {
    const now = Date.now();
    return this.#load(
      ids.filter((id) => !((this.#known.get(id)?.untilMs ?? 0) > now)).map((id) => [id, 0]),
      call,
    );
  }

  /**
   * The entry as the states known here allow it to be answered, without reading any: as it is, stale from a soft
   * purge, or `undefined` (a tag invalidated, or its state not known here now). With `lastKnown`, by the states
   * last known here even when due for a reread: for when DynamoDB cannot be asked (the bound `refreshMs` gives
   * holds as long as DynamoDB answers).
   */
  verdict(entry: CacheEntry, nowMs: number, lastKnown = false): CacheEntry | undefined {
    let softSinceMs = Number.POSITIVE_INFINITY;
    const stamps = entry.tags ?? [];
    // An index loop: no iterator per memory hit.
    for (let i = 0; i < stamps.length; i++) {
      const token = stamps[i]![1];
      const known = this.#known.get(stamps[i]![0]);
      const state = known !== undefined && (lastKnown || known.untilMs > nowMs) ? known.state : undefined;
      if (state?.token === token) continue;
      if (state === undefined || !state.soft.includes(token)) return undefined;
      softSinceMs = Math.min(softSinceMs, state.version);
    }
    if (softSinceMs === Number.POSITIVE_INFINITY) return entry;
    // Stale from the purge on (and from now at the latest, should this clock lag the purger's).
    return { ...entry, freshUntilMs: Math.min(entry.freshUntilMs, softSinceMs, nowMs) };
  }

  /**
   * Reads the states of tags (by id), sharing reads in flight that started no earlier than asked; a read failed
   * a moment ago is not repeated yet. Resolves why a state could not be read, if one could not.
   */
  async #load(requests: ReadonlyArray<readonly [id: string, notBeforeMs: number]>, call: CallBudget): Promise<FailureKind | undefined> {
    const joined = new Map<Reading, Array<readonly [id: string, notBeforeMs: number]>>();
    const toRead: string[] = [];
    for (const request of requests) {
      const reading = this.#reading.get(request[0]);
      if (reading !== undefined && reading.startedMs >= request[1]) joined.set(reading, [...(joined.get(reading) ?? []), request]);
      else toRead.push(request[0]);
    }
    const waits = [...joined].map(([reading, again]) => this.#join(reading, again, call));
    if (toRead.length > 0) waits.push(this.#start(toRead, call));
    return (await Promise.all(waits)).find((failure) => failure !== undefined);
  }

  /** Starts a read of `ids` that other callers may share, unless a read failed a moment ago. */
  #start(ids: readonly string[], call: CallBudget): Promise<FailureKind | undefined> {
    const startedMs = Date.now();
    if (startedMs < this.#retry.atMs) return Promise.resolve(this.#retry.failure);
    const reading: Reading = { startedMs, done: this.#read(ids, call) };
    for (const id of ids) this.#reading.set(id, reading);
    return reading.done.finally(() => {
      for (const id of ids) if (this.#reading.get(id) === reading) this.#reading.delete(id);
    });
  }

  /**
   * Waits for a read another caller started, as long as this caller's own deadline and signal allow (the read
   * goes on for the others). A read that its starter's deadline or abort cut short is made again for this one.
   */
  async #join(reading: Reading, requests: ReadonlyArray<readonly [id: string, notBeforeMs: number]>, call: CallBudget): Promise<FailureKind | undefined> {
    const failure = await withinCall(reading.done, call);
    if ((failure === 'deadline' || failure === 'aborted') && !callEnded(call)) return this.#load(requests, call);
    return failure;
  }

  /**
   * One strongly consistent BatchGetItem of the states of `ids`. Never rejects: what could not be read stays
   * unknown, and the read resolves why (`client`: the keys to authenticate a state could not be had).
   */
  async #read(ids: readonly string[], call: CallBudget): Promise<FailureKind | undefined> {
    const startedMs = Date.now();
    const keys = ids.map((id) => this.#s.keys.tagKey(id));
    const { items, complete, failure = 'server' } = await this.#s.dynamo.batchGet(keys, { consistent: true, call });
    const learnt = await Promise.all(
      ids.map(async (id, index) => {
        const item = items.get(keys[index]!);
        // Absent from an incomplete answer: not read, rather than not there.
        return item === undefined && !complete ? false : this.#learn(id, keys[index]!, item, startedMs, call);
      }),
    );
    if (complete) return learnt.every(Boolean) ? undefined : 'client';
    // A caller's deadline or abort says nothing about DynamoDB.
    if (failure !== 'deadline' && failure !== 'aborted') this.#retry = { atMs: Date.now() + FAILED_READ_BACKOFF_MS, failure };
    return failure;
  }

  /** Takes in what a read started at `readMs` found under `tagKey`; `false` when it cannot be vouched for (the keys are unavailable). */
  async #learn(id: string, tagKey: string, item: Item | undefined, readMs: number, call: CallBudget): Promise<boolean> {
    const previous = this.#known.get(id);
    // This environment wrote a state after the read started: the read may predate it.
    if (previous !== undefined && previous.learntMs > readMs) return true;
    const maxVersion = previous?.maxVersion ?? 0;
    const found = tagStateOf(this.#s.attributes, item);
    const trust = found === undefined ? (item === undefined ? 'absent' : 'malformed') : await this.#trust(tagKey, found, call);
    if (trust === 'unavailable') return false;
    const state = trust === 'trusted' && found!.version >= maxVersion ? found : undefined;
    if (state === undefined && trust !== 'absent') {
      if (trust !== 'trusted') this.#s.stats.increment('corruptItems');
      const why = trust === 'trusted' ? 'is older than one seen before' : trust === 'forged' ? 'does not authenticate' : 'is malformed';
      this.#failed(`dynamo-cache: tag item ${why}; its values are invalid until the tag is written again`, tagKey);
    }
    const createdHere = previous?.createdHere === true && state !== undefined && previous.state?.token === state.token;
    this.#remember(id, { state, present: item === undefined ? undefined : (item[TAG_ATTRIBUTES.token]?.S ?? null), maxVersion: Math.max(maxVersion, state?.version ?? 0), learntMs: readMs, createdHere });
    return true;
  }

  async #trust(tagKey: string, state: TagState, call: CallBudget): Promise<'trusted' | 'forged' | 'unavailable'> {
    const keyring = this.#s.keyring;
    if (keyring === undefined) return 'trusted';
    try {
      return state.signature !== undefined && (await keyring.verify(tagStateText(tagKey, state), state.signature, call)) ? 'trusted' : 'forged';
    } catch (error) {
      // Without the keys nothing can be vouched for: the state stays unknown (its values are misses).
      this.#failed('dynamo-cache: encryption keys unavailable; tag state not read', tagKey, error);
      return 'unavailable';
    }
  }

  /**
   * Writes a new state for the tag, conditional on the one there (again after another writer's, up to 3
   * times): an invalidation (`mode`), or, without one, a first state where there is none this environment can
   * use. A usable one is kept if it was written before `beforeMs`, or created by this environment (a first
   * state, which follows no invalidation); otherwise it will not do. Resolves the token in place
   * after it, or `undefined` when it could not be had (the state unknown or too new, DynamoDB failing: logged).
   */
  async #replace(id: string, mode: InvalidationMode | undefined, call: CallBudget, beforeMs = Number.POSITIVE_INFINITY): Promise<string | undefined> {
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const known = this.#known.get(id);
      // A first state and a soft purge follow the state they replace, so they need it; a hard purge only has to be newer than whatever is there.
      if (mode !== 'expire' && (known === undefined || known.untilMs <= Date.now())) return undefined;
      // A state written since the fetch started may be an invalidation; one this environment created could not follow one.
      if (mode === undefined && known!.state !== undefined) return known!.createdHere === true || known!.state.version < beforeMs ? known!.state.token : undefined;
      const next = this.#next(known, mode === 'stale' ? known!.state : undefined);
      const present = known?.present;
      const condition =
        mode === 'expire' && attempt === 0
          ? this.#condition('attribute_not_exists(#key) OR #version < :version', { ':version': { N: String(next.version) } })
          : present === undefined
            ? this.#condition('attribute_not_exists(#key)')
            : present === null
              ? this.#condition('attribute_exists(#key) AND attribute_not_exists(#token)')
              : this.#condition('#token = :token', { ':token': { S: present } });
      const written = await this.#write(id, next, condition, call, mode === undefined);
      if (written) return next.token;
      if (written === undefined) {
        // An invalidation not recorded: this environment still stops serving the tag's values, and the next write under the tag retries it.
        if (mode !== undefined) this.#remember(id, { state: undefined, present, maxVersion: known?.maxVersion ?? 0, learntMs: Date.now() });
        return undefined;
      }
      await this.#read([id], call); // another writer got in first: take its state
    }
    return undefined;
  }

  /** A new state after what is `known` (newer than any version seen here), keeping `softOf`'s values servable stale. */
  #next(known: Known | undefined, softOf: TagState | undefined): TagState {
    const now = Date.now();
    const version = Math.max((known?.maxVersion ?? 0) + 1, now);
    return {
      version,
      // The version leads the token, so that a value's stamp tells which state it was written under (see `judge`).
      token: `${version.toString(36)}.${randomBytes(12).toString('base64url')}`,
      soft: softOf === undefined ? [] : [softOf.token, ...softOf.soft].slice(0, MAX_SOFT_TOKENS),
      expiresAt: Math.max(Math.ceil(now / 1000) + TAG_LIFETIME_SECONDS, softOf?.expiresAt ?? 0),
    };
  }

  /** Writes `state` when `condition` holds: `true` (and known here at once), `false` (the condition failed), `undefined` (DynamoDB failed or the keys to sign it are missing; logged). */
  async #write(id: string, state: TagState, condition: WriteCondition, call: CallBudget, createdHere = false): Promise<boolean | undefined> {
    const tagKey = this.#s.keys.tagKey(id);
    let signed = state;
    if (this.#s.keyring !== undefined) {
      try {
        signed = { ...state, signature: await this.#s.keyring.sign(tagStateText(tagKey, state), call) };
      } catch (error) {
        this.#failed('dynamo-cache: tag state could not be signed', tagKey, error);
        return undefined;
      }
    }
    const writtenMs = Date.now();
    const outcome = await this.#s.dynamo.putIf(tagItem(this.#s.attributes, tagKey, signed), condition, call);
    if (!outcome.ok) return undefined;
    if (outcome.value) {
      const known = this.#known.get(id);
      const maxVersion = Math.max(known?.maxVersion ?? 0, state.version);
      // An extension keeps the state (and whether it was created here).
      this.#remember(id, { state: signed, present: state.token, maxVersion, learntMs: writtenMs, createdHere: createdHere || (known?.createdHere === true && known.state?.token === state.token) });
    }
    return outcome.value;
  }

  /** Makes the tag's item outlive a value stamped with `token` expiring at `expiresAtSeconds` (best effort: failing, the value is only invalid early). */
  async #outlive(id: string, token: string, expiresAtSeconds: number, call: CallBudget): Promise<void> {
    const state = this.#known.get(id)?.state;
    if (state === undefined || state.token !== token || state.expiresAt >= expiresAtSeconds + EXTEND_MARGIN_SECONDS) return;
    const extended = { ...state, expiresAt: expiresAtSeconds + TAG_LIFETIME_SECONDS };
    await this.#write(id, extended, this.#condition('#token = :token AND #version = :version', { ':token': { S: token }, ':version': { N: String(state.version) } }), call);
  }

  /** A write condition on the tag item's key, token and version (`#key`, `#token`, `#version`, as it names them). */
  #condition(expression: string, values?: WriteCondition['values']): WriteCondition {
    const all = { '#key': this.#s.attributes.key, '#token': TAG_ATTRIBUTES.token, '#version': TAG_ATTRIBUTES.version };
    return { expression, names: Object.fromEntries(Object.entries(all).filter(([name]) => expression.includes(name))), ...(values === undefined ? {} : { values }) };
  }

  #remember(id: string, known: Omit<Known, 'untilMs'>): void {
    this.#known.delete(id);
    if (this.#known.size >= MAX_KNOWN_TAGS) this.#known.delete(this.#known.keys().next().value!);
    this.#known.set(id, { ...known, untilMs: known.learntMs + this.#s.refreshMs });
  }

  /** Counts and logs an absorbed failure (or an item not taken for the truth). */
  #failed(message: string, tagKey: string, error?: unknown): void {
    this.#s.stats.increment('errors');
    this.#s.logger.warn(message, { key: tagKey, ...(error === undefined ? {} : { errorName: (error as Error)?.name, errorMessage: (error as Error)?.message }) });
  }
}

/** The version a state's token starts with (0 for a token without one). */
function versionOf(token: string): number {
  const version = Number.parseInt(token.slice(0, token.indexOf('.')), 36);
  return Number.isFinite(version) ? version : 0;
}
