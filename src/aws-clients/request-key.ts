import { createHash } from 'node:crypto';
import { toTaggedJson, type TaggingStyle } from './tagged-json.ts';

/** Where a call goes and with whose authority: what, besides its input, decides its answer. */
export interface RequestScope {
  /** The client's name in the SDK (`S3Client`). */
  readonly clientName: string;
  /** The client's region (`''` when it has none). */
  readonly region: string;
  /** The endpoint the SDK resolved for the call, as a URL, however it was configured (`''` when unknown). */
  readonly endpoint: string;
  /** Whose authority the call carries (see `principalOf`). */
  readonly principal: string;
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
 * the resolved endpoint, the principal and the canonical input (keys sorted, binary members hashed, `Date`s
 * as instants), or the caller's own `key` instead of the input. The input itself never appears: it may hold
 * tokens (Cognito `GetUser`'s `AccessToken`) or customer keys (S3 `SSECustomerKey`). Components are
 * URI-encoded so that the `/` separators are unambiguous. The cache adds its namespace in front.
 * @throws UnencodableValueError when the input holds something other than plain data.
 */
export function requestKey(scope: RequestScope, input: unknown, customKey?: string): string {
  const subject = customKey === undefined ? ['input', toTaggedJson(input, KEY_STYLE)] : ['key', customKey];
  const digest = createHash('sha256')
    .update(JSON.stringify([scope.endpoint, scope.principal, ...subject]))
    .digest('base64url');
  return ['aws', scope.clientName, scope.region, scope.commandName].map(encodeURIComponent).join('/') + `/${digest}`;
}
