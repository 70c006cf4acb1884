/**
 * Which AWS SDK commands may be cached, and which calls carry secrets.
 *
 * Only reads are cached: an operation whose name starts with a read verb (`Get`, `Head`, `Describe`, `List`,
 * `Query`, `Scan`, `BatchGet`), after Cognito's `Admin` prefix. Among reads, those that mint credentials,
 * tokens or one-time values are refused too: caching them would hand one caller's credentials to another, or
 * an expired one to everybody.
 */

const READ_VERB = /^(?:Admin)?(?:Get|Head|Describe|List|Query|Scan|BatchGet)(?:[A-Z0-9]|$)/;

/**
 * Reads that mint something: STS `GetSessionToken`/`GetFederationToken`, Cognito `GetCredentialsForIdentity`/
 * `GetOpenIdToken`, ECR `GetAuthorizationToken`, Redshift `GetClusterCredentials`, Secrets Manager
 * `GetRandomPassword`, EC2 `GetPasswordData`, Kinesis `GetShardIterator`, presigned download URLs...
 */
const MINTING_OPERATION = /Token|Credential|Password|ShardIterator|PresignedUrl|DownloadUrl/;
/** Minting reads the pattern misses: Cognito Identity `GetId` creates the identity it returns. */
const MINTING_OPERATIONS = new Set(['GetId']);

/** Commands whose output is a secret whatever the SDK marks (Secrets Manager). */
const SECRET_COMMANDS = new Set(['GetSecretValueCommand', 'BatchGetSecretValueCommand']);

/** SSM reads that return decrypted `SecureString` values when asked `WithDecryption`. */
const DECRYPTING_COMMANDS = new Set(['GetParameterCommand', 'GetParametersCommand', 'GetParametersByPathCommand', 'GetParameterHistoryCommand']);

/** Input members that make a read conditional (S3 `GetObject`/`HeadObject`). */
const CONDITIONAL_MEMBERS = ['IfMatch', 'IfNoneMatch', 'IfModifiedSince', 'IfUnmodifiedSince'] as const;

/** What the SDK writes in a log line in place of a member its model marks sensitive. */
export const SENSITIVE_STRING = '***SensitiveInformation***';

/** Why `commandName` may not be cached, or `undefined` when it is a plain read. */
export function refusalOf(commandName: string): string | undefined {
  const operation = commandName.slice(0, -'Command'.length);
  if (!READ_VERB.test(operation)) {
    return `${commandName} is not a read: only operations starting with Get, Head, Describe, List, Query, Scan or BatchGet (after Cognito's Admin prefix) can be cached`;
  }
  if (MINTING_OPERATION.test(operation) || MINTING_OPERATIONS.has(operation)) {
    return `${commandName} mints credentials, tokens or one-time values: caching it would share them between callers or serve expired ones`;
  }
  return undefined;
}

/** Whether every output of `commandName` is a secret (known cases, whatever the SDK's marks say). */
export function isSecretCommand(commandName: string): boolean {
  return SECRET_COMMANDS.has(commandName);
}

/** Why this call's output is a secret from its input alone (SSM `WithDecryption`), or `undefined`. */
export function secretInputReason(commandName: string, input: Record<string, unknown>): string | undefined {
  return DECRYPTING_COMMANDS.has(commandName) && input.WithDecryption === true ? 'WithDecryption' : undefined;
}

/**
 * Whether the caller asks for the service's answer now, which no cached answer can be: a conditional read
 * (`IfNoneMatch`, `IfModifiedSince`...: a caller revalidating its copy) or a strongly consistent DynamoDB
 * read (`ConsistentRead: true`). Such calls are never cached.
 */
export function wantsLiveAnswer(input: Record<string, unknown>): boolean {
  return input.ConsistentRead === true || CONDITIONAL_MEMBERS.some((member) => input[member] !== undefined && input[member] !== null);
}

/**
 * The members of `value` that the SDK's log filter for it (`context.inputFilterSensitiveLog` or
 * `outputFilterSensitiveLog`, built from the model's `@sensitive` marks) redacts, as paths such as
 * `UserPoolClient.ClientSecret` or `UserAttributes[].Value`. A filter that fails counts as redacting
 * everything: when in doubt, a value is a secret.
 */
export function redactedMembers(value: unknown, filter: unknown): string[] {
  if (typeof filter !== 'function' || value === null || typeof value !== 'object') return [];
  let filtered: unknown;
  try {
    filtered = filter(value);
  } catch {
    return ['(the SDK log filter failed)'];
  }
  const paths = new Set<string>();
  collectRedacted(value, filtered, '', paths);
  return [...paths];
}

function collectRedacted(original: unknown, filtered: unknown, path: string, paths: Set<string>): void {
  if (filtered === SENSITIVE_STRING && original !== SENSITIVE_STRING) {
    paths.add(path === '' ? '(the whole value)' : path);
    return;
  }
  // The filter copies what it walks: the same object back (a stream, a Date) holds nothing it redacted.
  if (filtered === original || !isPlainContainer(filtered) || !isPlainContainer(original)) return;
  for (const [key, member] of Object.entries(filtered)) {
    const memberPath = Array.isArray(filtered) ? `${path}[]` : path === '' ? key : `${path}.${key}`;
    collectRedacted((original as Record<string, unknown>)[key], member, memberPath, paths);
  }
}

function isPlainContainer(value: unknown): value is object {
  if (Array.isArray(value)) return true;
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
