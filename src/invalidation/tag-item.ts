import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { META, type AttributeNames } from '../storage/item.ts';

/** Marker (`dc_enc`) of a tag's state item, keyed `<namespace>:#dc:t:<tag>` (see `KeyMapper.tagKey`). */
export const TAG_MARKER = 'tag';

/** The attributes of a tag's state item, besides the key, the expiry, the marker and the signature (`dc_sig`). */
export const TAG_ATTRIBUTES = {
  /** N: the state's version, epoch ms when it was written (or one more than the last, when that is larger): it only grows. */
  version: 'dc_version',
  /** S: the state's random token; a value written under the tag records it, and is valid only while it is the tag's. */
  token: 'dc_token',
  /** L of S: tokens of earlier states whose values are stale rather than invalid (soft purge); absent when none. */
  soft: 'dc_soft',
} as const;

/**
 * One state of a tag. Every invalidation replaces it with a new one (a new token, a higher version); the
 * values written under the old token stop being fresh.
 */
export interface TagState {
  readonly version: number;
  readonly token: string;
  /** Tokens of earlier states whose values are served stale (within their stale windows), newest first. */
  readonly soft: readonly string[];
  /** Epoch seconds: the item's TTL. Not signed: cutting it short only invalidates values early. */
  readonly expiresAt: number;
  /** `<key id>:<HMAC>` over `tagStateText`, with encryption. */
  readonly signature?: string | undefined;
}

/** The item holding `state` under `tagKey`. */
export function tagItem(names: AttributeNames, tagKey: string, state: TagState): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [names.key]: { S: tagKey },
    [names.expiresAt]: { N: String(state.expiresAt) },
    [META.encoding]: { S: TAG_MARKER },
    [TAG_ATTRIBUTES.version]: { N: String(state.version) },
    [TAG_ATTRIBUTES.token]: { S: state.token },
  };
  if (state.soft.length > 0) item[TAG_ATTRIBUTES.soft] = { L: state.soft.map((token) => ({ S: token })) };
  if (state.signature !== undefined) item[META.signature] = { S: state.signature };
  return item;
}

/** The state a tag item holds, or `undefined` when `item` is absent or not a well-formed tag item. */
export function tagStateOf(names: AttributeNames, item: Record<string, AttributeValue> | undefined): TagState | undefined {
  if (item?.[META.encoding]?.S !== TAG_MARKER) return undefined;
  const version = Number(item[TAG_ATTRIBUTES.version]?.N);
  const expiresAt = Number(item[names.expiresAt]?.N);
  const token = item[TAG_ATTRIBUTES.token]?.S;
  const soft = item[TAG_ATTRIBUTES.soft]?.L?.map((entry) => entry.S);
  if (!Number.isSafeInteger(version) || !Number.isFinite(expiresAt) || token === undefined || soft?.some((entry) => entry === undefined)) return undefined;
  const signature = item[META.signature]?.S;
  return { version, token, soft: (soft as string[] | undefined) ?? [], expiresAt, ...(signature === undefined ? {} : { signature }) };
}

/** What a tag state's signature covers: the item's key and every field that decides which values are valid. */
export function tagStateText(tagKey: string, state: TagState): string {
  return JSON.stringify(['dynamo-cache/tag/v1', tagKey, state.version, state.token, state.soft]);
}
