import { createHash } from 'node:crypto';
import { toTaggedJson, type TaggingStyle } from './tagged-json.ts';

/** Where a call goes: what, besides its input, decides its answer. */
export interface RequestScope {
  /** The client's name in the SDK (`S3Client`). */
  readonly clientName: string;
  /** The client's region (`''` when it has none). */
  readonly region: string;
  /** A custom endpoint the client is configured with, as a URL. */
  readonly endpoint: string | undefined;
  /** The command's name (`GetObjectCommand`). */
  readonly commandName: string;
}

/** Key style: keys sorted, binary members replaced by their hash, so the text is canonical and holds no data. */
const KEY_STYLE: TaggingStyle = {
  bytes: (data) => ({ $t: 'bytes', sha256: createHash('sha256').update(data).digest('hex') }),
  sortKeys: true,
};

/**
 * The cache key of one call: `aws/<client>/<region>/<command>/<digest>`, where the digest is the SHA-256 of
 * the canonical input (keys sorted, binary members hashed, `Date`s as instants) together with the custom
 * endpoint, or of the caller's own `key` when one is given. The input itself never appears: it may hold
 * tokens (Cognito `GetUser`'s `AccessToken`) or customer keys (S3 `SSECustomerKey`). Components are
 * URI-encoded so that the `/` separators are unambiguous. The cache adds its namespace in front.
 * @throws UnencodableValueError when the input holds something other than plain data.
 */
export function requestKey(scope: RequestScope, input: unknown, customKey?: string): string {
  const subject = customKey === undefined ? ['input', toTaggedJson(input, KEY_STYLE)] : ['key', customKey];
  const digest = createHash('sha256')
    .update(JSON.stringify([scope.endpoint ?? null, ...subject]))
    .digest('base64url');
  return ['aws', scope.clientName, scope.region, scope.commandName].map(encodeURIComponent).join('/') + `/${digest}`;
}
