/**
 * What the AWS SDK marks sensitive: members its model tags `@sensitive`, which its own log filters
 * (`inputFilterSensitiveLog`, `outputFilterSensitiveLog`) replace with `***SensitiveInformation***`. What
 * the SDK will not even write to a log is not written to a cache table in clear.
 */
import type { Operation } from './command-rules.ts';

/** What the SDK writes in a log line in place of a member its model marks sensitive. */
export const SENSITIVE_STRING = '***SensitiveInformation***';

/**
 * Operations whose every successful answer holds a member the SDK marks sensitive, with that member: a
 * member the model requires (Cognito `Username`), or the member that is the answer itself (a secret's
 * value, a parameter's value, a client's id). Their outputs are never storable in clear, which is known
 * when the command is configured. `test/aws-client-rules.test.ts` checks each path against the installed
 * clients' own log filters, and that no other read of theirs has a required sensitive member.
 */
export const SENSITIVE_ANSWERS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'Secrets Manager': { GetSecretValue: 'SecretString', BatchGetSecretValue: 'SecretValues[].SecretString' },
  SSM: { GetParameter: 'Parameter.Value', GetParameters: 'Parameters[].Value', GetParametersByPath: 'Parameters[].Value', GetParameterHistory: 'Parameters[].Value' },
  'Cognito Identity Provider': {
    AdminGetUser: 'Username',
    GetUser: 'Username',
    AdminGetUserAuthFactors: 'Username',
    GetUserAuthFactors: 'Username',
    DescribeUserPoolClient: 'UserPoolClient.ClientId',
    ListUserPoolClientSecrets: 'ClientSecrets[].ClientSecretValue',
  },
};

/** The sensitive member every answer of the operation holds (`Parameter.Value`), or `undefined`. */
export function sensitiveAnswerOf(operation: Operation): string | undefined {
  const tables = operation.service === undefined ? Object.values(SENSITIVE_ANSWERS) : Object.hasOwn(SENSITIVE_ANSWERS, operation.service) ? [SENSITIVE_ANSWERS[operation.service]!] : [];
  return tables.map((members) => (Object.hasOwn(members, operation.name) ? members[operation.name] : undefined)).find((member) => member !== undefined);
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
