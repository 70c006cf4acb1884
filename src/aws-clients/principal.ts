/**
 * Whose authority a call carries: the part of the cache key that keeps a caller from receiving an output
 * its own credentials could not have obtained, while every execution environment of one function (each with
 * its own temporary credentials for the same role) still shares one output.
 */

/** The credentials a call is signed with, as the SDK resolved them (`selectedHttpAuthScheme.identity`). */
export interface CallIdentity {
  readonly accessKeyId?: unknown;
  readonly sessionToken?: unknown;
  /** A bearer token identity (services that authorize with a token instead of SigV4). */
  readonly token?: unknown;
}

/** How a principal was found: what the key then shares, and with whom. */
export type PrincipalKind = 'label' | 'function' | 'access-key' | 'session' | 'credentials' | 'anonymous' | 'shared';

/** The authority part of a key: a text that only callers of the same authority share. */
export interface Principal {
  readonly kind: PrincipalKind;
  /** Hashed into the key with the input; never stored or logged as it is. */
  readonly id: string;
}

/** How a client's calls are attributed (`cacheAwsClient`'s `principal` option and the command's rules). */
export interface PrincipalRule {
  /** The client's `principal` label, when configured. */
  readonly label: string | undefined;
  /** The command's answer is about the credentials themselves (STS `GetCallerIdentity`): always the exact credentials. */
  readonly exact: boolean;
  /** The command is shared across principals (`shareAcrossPrincipals`). */
  readonly shared: boolean;
}

/**
 * The principal of one call:
 * - `credentials` (exact): for identity commands, the access key id (or token) the call is signed with;
 * - `shared`: the command is shared across principals, on purpose;
 * - `anonymous`: the call is not signed (Cognito `GetUser` is authorized by the token in its input);
 * - `label`: the client's configured `principal`;
 * - `function`: the Lambda function's own credentials (those of `AWS_ACCESS_KEY_ID` and `AWS_SESSION_TOKEN`
 *   in a function, `AWS_LAMBDA_FUNCTION_NAME`): its execution role, the same in every environment;
 * - `access-key`: long-term credentials (no session token): the access key id is stable;
 * - `session`: other temporary credentials (an assumed role per tenant...) or a bearer token: they name one
 *   session, so the outputs are shared only within it, never with other credentials.
 */
export function principalOf(identity: CallIdentity | undefined, rule: PrincipalRule, env: NodeJS.ProcessEnv = process.env): Principal {
  const credential = stringOf(identity?.accessKeyId) ?? stringOf(identity?.token);
  if (rule.exact) return credential === undefined ? { kind: 'anonymous', id: 'anonymous' } : { kind: 'credentials', id: `credentials:${credential}` };
  if (rule.shared) return { kind: 'shared', id: 'shared' };
  if (credential === undefined) return { kind: 'anonymous', id: 'anonymous' };
  if (rule.label !== undefined) return { kind: 'label', id: `label:${rule.label}` };
  const sessionToken = stringOf(identity?.sessionToken);
  const functionName = env.AWS_LAMBDA_FUNCTION_NAME;
  if (functionName && credential === env.AWS_ACCESS_KEY_ID && (sessionToken ?? '') === (env.AWS_SESSION_TOKEN ?? '')) {
    return { kind: 'function', id: `function:${env.AWS_REGION ?? ''}:${functionName}` };
  }
  if (sessionToken === undefined && stringOf(identity?.accessKeyId) !== undefined) return { kind: 'access-key', id: `access-key:${credential}` };
  return { kind: 'session', id: `session:${credential}` };
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
