/**
 * Which AWS SDK commands may be cached, and which calls must reach the service.
 *
 * Only reads are cached: an operation whose name starts with a read verb (`Get`, `Head`, `Describe`, `List`,
 * `Query`, `Scan`, `BatchGet`), after Cognito's `Admin` prefix. Among reads, those whose answer is minted for
 * the one call (credentials, tokens, signed URLs, temporary access, one-time codes), is consumed by reading it
 * (an iterator, the records it hands out) or has a side effect, are refused: caching them would hand one
 * caller's credentials to another, an expired one to everybody, or skip the effect. The rules read the
 * operation's words (`GetPersistentAppUIPresignedURL` is Get, Persistent, App, UI, Presigned, URL), so that a
 * spelling (`URL`, `Url`) cannot slip past them; a few operations whose names tell nothing are named.
 */

/** An operation as the rules see it: the client's `serviceId` (`S3`, `STS`, `Cognito Identity Provider`) and its name (`GetObject`). */
export interface Operation {
  /** The client's `config.serviceId`; `undefined` when the client does not tell (then a rule of any service applies). */
  readonly service: string | undefined;
  /** The operation's name: the command's class name without `Command`. */
  readonly name: string;
}

const READ_VERB = /^(?:Admin)?(?:Get|Head|Describe|List|Query|Scan|BatchGet)(?:[A-Z0-9]|$)/;

/** A rule that refuses a read, and why. `words` are the operation's words, lower-cased. */
interface Refusal {
  readonly applies: (words: readonly string[], name: string) => boolean;
  readonly why: string;
}

/** Qualifiers that make a URL a credential: a presigned, signed, embedding, session or download URL. */
const CREDENTIAL_URL = new Set(['presigned', 'signed', 'embed', 'download', 'downloads', 'upload', 'session', 'streaming', 'login', 'signin', 'access', 'artifact', 'console', 'authorize', 'authorization']);

/** Last words that make a read about credentials, not of them: IAM `GetAccountPasswordPolicy`, `GetCredentialReport`. */
const ABOUT_CREDENTIALS = new Set(['policy', 'policies', 'report', 'reports', 'balance', 'balances', 'configuration', 'configurations', 'config', 'settings', 'status']);

const REFUSALS: readonly Refusal[] = [
  {
    // STS GetSessionToken, Cognito GetCredentialsForIdentity, ECR GetAuthorizationToken, Redshift GetClusterCredentials, EC2 GetPasswordData...
    // A List read lists credentials' metadata (Cognito ListWebAuthnCredentials, IAM ListServiceSpecificCredentials), never mints them.
    applies: (words) => words[0] !== 'list' && words.some((word) => /^(?:tokens?|credentials?|passwords?|passcodes?)$/.test(word)) && !ABOUT_CREDENTIALS.has(words.at(-1)!),
    why: 'mints credentials, tokens or passwords',
  },
  {
    // QuickSight GetDashboardEmbedUrl, EMR Get...PresignedURL, ECR GetDownloadUrlForLayer, Kinesis Video GetHLSStreamingSessionURL, GameLift GetGameSessionLogUrl
    applies: (words) => words.some((word) => word === 'url' || word === 'urls') && words.some((word) => CREDENTIAL_URL.has(word)),
    why: 'mints a presigned, signed or session URL',
  },
  {
    // S3 Access Grants GetDataAccess, GameLift GetComputeAccess and GetInstanceAccess, Lightsail GetInstanceAccessDetails
    applies: (words) => words[0] === 'get' && (words.at(-1) === 'access' || words.some((word, i) => word === 'access' && words[i + 1] === 'details')),
    why: 'grants temporary access (credentials, keys or passwords)',
  },
  {
    // Cognito GetUserAttributeVerificationCode (sends the code), Snowball GetJobUnlockCode
    applies: (words) => words[0] === 'get' && words.at(-1) === 'code',
    why: 'sends or mints a one-time code',
  },
  {
    // Kinesis and DynamoDB Streams: an iterator is good for one read, and each read moves it on.
    applies: (words, name) => words.includes('iterator') || name === 'GetRecords',
    why: 'reads a stream through a single-use iterator',
  },
  { applies: (_words, name) => name === 'GetId', why: 'creates the Cognito identity it returns' },
  { applies: (_words, name) => name === 'GetIceServerConfig', why: 'mints TURN server credentials' },
  { applies: (_words, name) => name === 'GetParametersForImport', why: 'mints a single-use import token and wrapping key' },
  { applies: (_words, name) => name === 'GetDeployablePatchSnapshotForInstance', why: 'mints a presigned download URL' },
];

/**
 * Reads of one service whose names tell nothing of what they hand out, by service (`serviceId`): refused for
 * that service only (a client that does not tell its service is refused them all).
 */
const SERVICE_REFUSALS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  // Code.Location and Content.Location are presigned URLs valid for 10 minutes.
  Lambda: { GetFunction: 'answers with a presigned download URL', GetLayerVersion: 'answers with a presigned download URL', GetLayerVersionByArn: 'answers with a presigned download URL' },
  // A worker's long poll: it hands out (dequeues) one task and its task token.
  SFN: { GetActivityTask: 'dequeues a task and its task token' },
  // Each configuration token is good for one call, and the answer is empty when nothing changed since it.
  AppConfigData: { GetLatestConfiguration: 'consumes a single-use configuration token' },
  // DownloadUrlMetadata.Url is a presigned download URL.
  Connect: { GetAttachedFile: 'answers with a presigned download URL' },
};

/**
 * Operations whose answer is about the caller's own credentials: STS `GetCallerIdentity`, IAM reads that
 * default to the calling user, and Cognito and IAM Identity Center reads authorized by the user's access
 * token in the input. Their outputs are keyed by the exact credentials (never a `principal` label, never
 * shared across principals), and by the whole input (never a custom `key`).
 */
const IDENTITY_OPERATIONS: Readonly<Record<string, readonly string[]>> = {
  STS: ['GetCallerIdentity'],
  IAM: ['GetUser', 'GetLoginProfile', 'ListAccessKeys', 'ListMFADevices', 'ListSigningCertificates', 'ListSSHPublicKeys', 'ListServiceSpecificCredentials'],
  'Cognito Identity Provider': ['GetUser', 'GetUserAuthFactors', 'GetDevice', 'ListDevices', 'ListWebAuthnCredentials'],
  SSO: ['ListAccounts', 'ListAccountRoles'],
};

/** Operations that are strongly consistent by definition: DynamoDB answers them, never a cache. */
const ALWAYS_LIVE: Readonly<Record<string, readonly string[]>> = {
  DynamoDB: ['TransactGetItems'],
};

/** Input members that make a read conditional (S3 `GetObject`/`HeadObject`). */
const CONDITIONAL_MEMBERS = ['IfMatch', 'IfNoneMatch', 'IfModifiedSince', 'IfUnmodifiedSince'] as const;

/** The operation of a command, by its class name, on a client of `serviceId`. */
export function operationOf(serviceId: unknown, commandName: string): Operation {
  return { service: typeof serviceId === 'string' && serviceId !== '' ? serviceId : undefined, name: commandName.replace(/Command$/, '') };
}

/** The words of an operation's name, lower-cased: `GetHLSStreamingSessionURL` is get, hls, streaming, session, url. */
function wordsOf(name: string): string[] {
  return (name.match(/[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|[0-9]+/g) ?? []).map((word) => word.toLowerCase());
}

/** Why the command may not be cached even with `dangerouslyAllowUnsafeCommand`, or `undefined`. */
export function hardRefusalOf(commandName: string, operation: Operation): string | undefined {
  if (inService(ALWAYS_LIVE, operation)) return `${commandName} is a strongly consistent read: it always goes to the service`;
  return undefined;
}

/** Why `commandName` may not be cached (unless `dangerouslyAllowUnsafeCommand`), or `undefined` when it is a plain read. */
export function refusalOf(commandName: string, operation: Operation = operationOf(undefined, commandName)): string | undefined {
  if (!READ_VERB.test(operation.name)) {
    return `${commandName} is not a read: only operations starting with Get, Head, Describe, List, Query, Scan or BatchGet (after Cognito's Admin prefix) can be cached`;
  }
  const words = wordsOf(operation.name);
  const why = REFUSALS.find((rule) => rule.applies(words, operation.name))?.why ?? serviceRefusalOf(operation);
  return why === undefined ? undefined : `${commandName} ${why}: caching it would share it between callers, serve it after it expired or skip its effect`;
}

/** Whether the operation's answer is about the caller's own credentials (see `IDENTITY_OPERATIONS`). */
export function isIdentityOperation(operation: Operation): boolean {
  return inService(IDENTITY_OPERATIONS, operation);
}

/**
 * Whether the caller asks for the service's answer now, which no cached answer can be: a conditional read
 * (`IfNoneMatch`, `IfModifiedSince`...: a caller revalidating its copy) or a strongly consistent DynamoDB read
 * (`ConsistentRead: true` on the request, or on any table of a `BatchGetItem`). Such calls are never cached.
 */
export function wantsLiveAnswer(input: Record<string, unknown>): boolean {
  if (input.ConsistentRead === true) return true;
  const tables = input.RequestItems;
  if (tables !== null && typeof tables === 'object' && Object.values(tables).some((table) => (table as { ConsistentRead?: unknown } | null)?.ConsistentRead === true)) return true;
  return CONDITIONAL_MEMBERS.some((member) => input[member] !== undefined && input[member] !== null);
}

/** Why the operation's own service refuses it (see `SERVICE_REFUSALS`), or `undefined`. */
function serviceRefusalOf(operation: Operation): string | undefined {
  const tables = operation.service === undefined ? Object.values(SERVICE_REFUSALS) : [SERVICE_REFUSALS[operation.service] ?? {}];
  for (const table of tables) if (Object.hasOwn(table, operation.name)) return table[operation.name];
  return undefined;
}

/** Whether `table` lists the operation under its service (under any service when the client does not tell its own). */
function inService(table: Readonly<Record<string, readonly string[]>>, operation: Operation): boolean {
  if (operation.service !== undefined) return Object.hasOwn(table, operation.service) && table[operation.service]!.includes(operation.name);
  return Object.values(table).some((names) => names.includes(operation.name));
}
