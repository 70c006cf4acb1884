import type { HttpEventSource } from './http-event.ts';
import { canonicalJson } from './canonical-json.ts';

/**
 * Where a piece of a caller's identity came from:
 * - `jwt`: an HTTP API JWT authorizer's claims and scopes;
 * - `claims`: a REST API Cognito user pool (or JWT) authorizer's claims;
 * - `authorizer`: a Lambda authorizer's `principalId` and its whole context (REST), or any other field
 *   API Gateway puts in the authorizer object;
 * - `lambda-authorizer`: an HTTP API Lambda authorizer's context;
 * - `iam`: the IAM caller (SigV4: user ARN, access key, account, Cognito identity);
 * - `client-certificate`: the mutual TLS client certificate (API Gateway's, or an ALB's `x-amzn-mtls-clientcert*` fields);
 * - `alb-oidc`: the identity an ALB `authenticate-oidc`/`authenticate-cognito` action sets (ALB events only);
 * - `credentials`: the credential request headers (`Authorization`, `Cookie`, `X-Api-Key` by default).
 */
export type IdentitySource = 'jwt' | 'claims' | 'authorizer' | 'lambda-authorizer' | 'iam' | 'client-certificate' | 'alb-oidc' | 'credentials';

/** One identity source present in a request and what it says, as canonical JSON (hashed into the key, never stored). */
export type IdentityComponent = readonly [source: IdentitySource, value: string];

type Json = Record<string, unknown>;

/** Request headers that carry credentials: when present they are part of the identity. */
export const DEFAULT_CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'cookie', 'x-api-key'];

/**
 * Token claims that describe one token, not who holds it: two tokens of one caller differ only in these,
 * so they are left out and a refreshed token does not split the caller's cache (the credential header,
 * when present, still does).
 */
const TOKEN_INSTANCE_CLAIMS = new Set(['exp', 'iat', 'nbf', 'auth_time', 'jti', 'origin_jti', 'event_id', 'at_hash', 'c_hash', 'nonce']);

/** Fields API Gateway adds to the authorizer object that change on every call. */
const PER_CALL_AUTHORIZER_FIELDS = new Set(['integrationLatency', 'integrationlatency']);

/** The IAM caller fields of a REST API event's `requestContext.identity` (not `sourceIp`, `userAgent`...). */
const IAM_IDENTITY_FIELDS = [
  'accessKey',
  'accountId',
  'caller',
  'user',
  'userArn',
  'cognitoIdentityId',
  'cognitoIdentityPoolId',
  'cognitoAuthenticationProvider',
  'cognitoAuthenticationType',
  'principalOrgId',
  'apiKeyId',
] as const;

/** The client certificate fields that name the certificate. */
const CLIENT_CERT_FIELDS = ['subjectDN', 'issuerDN', 'serialNumber'] as const;

/** The ALB OIDC fields; only an ALB sets them, elsewhere any client can send them. */
const ALB_OIDC_IDENTITY = 'x-amzn-oidc-identity';
const ALB_OIDC_DATA = 'x-amzn-oidc-data';
const ALB_OIDC_ACCESS_TOKEN = 'x-amzn-oidc-accesstoken';

/**
 * The ALB mutual TLS fields: the client certificate (`-leaf`, `-subject`, `-issuer`, `-serial-number`,
 * `-validity` in verify mode; the whole certificate in passthrough mode, under the prefix itself). Only an ALB
 * sets them.
 */
const ALB_MTLS_PREFIX = 'x-amzn-mtls-clientcert';

/**
 * Every identity source present in the request, combined (never the first found): authorizer claims,
 * context and principal, IAM caller, client certificate, ALB OIDC (ALB events only) and the credential
 * headers. Empty for an anonymous request. Two requests share a memoized response only when all of this
 * is equal.
 *
 * @param source - The event source: ALB OIDC headers count only on ALB events.
 * @param requestContext - The event's `requestContext`.
 * @param headers - Request headers, lower-case names.
 * @param credentialHeaders - Lower-case names of the credential headers.
 */
export function identityOf(source: HttpEventSource, requestContext: Json, headers: Readonly<Record<string, string>>, credentialHeaders: readonly string[]): IdentityComponent[] {
  const components: IdentityComponent[] = [];
  const authorizer = objectOr(requestContext.authorizer);
  if (authorizer !== undefined) addAuthorizer(components, authorizer);
  const iamFields = objectOr(requestContext.identity);
  if (iamFields !== undefined) {
    addPicked(components, 'iam', iamFields, IAM_IDENTITY_FIELDS);
    addPicked(components, 'client-certificate', objectOr(iamFields.clientCert), CLIENT_CERT_FIELDS);
  }
  addPicked(components, 'client-certificate', objectOr(objectOr(requestContext.authentication)?.clientCert), CLIENT_CERT_FIELDS);
  if (source === 'alb' && (headers[ALB_OIDC_IDENTITY] !== undefined || headers[ALB_OIDC_DATA] !== undefined)) {
    components.push(['alb-oidc', canonicalJson([headers[ALB_OIDC_IDENTITY] ?? null, albTokenIssuer(headers[ALB_OIDC_DATA]), headers[ALB_OIDC_ACCESS_TOKEN] ?? null])]);
  }
  if (source === 'alb') addPicked(components, 'client-certificate', headers, Object.keys(headers).filter((name) => name.startsWith(ALB_MTLS_PREFIX)).sort());
  const credentials: Array<[string, string]> = [];
  for (const name of credentialHeaders) {
    const value = headers[name];
    if (value !== undefined && value !== '') credentials.push([name, value]);
  }
  if (credentials.length > 0) components.push(['credentials', JSON.stringify(credentials)]);
  return components;
}

function addAuthorizer(components: IdentityComponent[], authorizer: Json): void {
  const rest: Json = {};
  for (const [field, value] of Object.entries(authorizer)) {
    if (value === undefined || value === null || PER_CALL_AUTHORIZER_FIELDS.has(field)) continue;
    if (field === 'jwt' && objectOr(value) !== undefined) {
      const jwt = value as Json;
      components.push(['jwt', canonicalJson({ claims: withoutTokenInstanceClaims(jwt.claims), scopes: jwt.scopes ?? null })]);
    } else if (field === 'claims' && objectOr(value) !== undefined) {
      components.push(['claims', canonicalJson(withoutTokenInstanceClaims(value))]);
    } else if (field === 'iam') {
      components.push(['iam', canonicalJson(value)]);
    } else if (field === 'lambda') {
      components.push(['lambda-authorizer', canonicalJson(value)]);
    } else {
      rest[field] = value;
    }
  }
  if (Object.keys(rest).length > 0) components.push(['authorizer', canonicalJson(rest)]);
}

function addPicked(components: IdentityComponent[], source: IdentitySource, object: Json | undefined, fields: readonly string[]): void {
  if (object === undefined) return;
  const picked: Json = {};
  let any = false;
  for (const field of fields) {
    const value = object[field];
    if (value === undefined || value === null || value === '') continue;
    picked[field] = value;
    any = true;
  }
  if (any) components.push([source, canonicalJson(picked)]);
}

function withoutTokenInstanceClaims(claims: unknown): Json | null {
  const object = objectOr(claims);
  if (object === undefined) return null;
  const kept: Json = {};
  for (const [name, value] of Object.entries(object)) if (!TOKEN_INSTANCE_CLAIMS.has(name)) kept[name] = value;
  return kept;
}

/**
 * The issuer, client and signer in the header of the ALB's `x-amzn-oidc-data` token, which say which
 * identity provider and ALB the `x-amzn-oidc-identity` subject belongs to. The header is read, not
 * verified: the ALB overwrites these fields on every request it authenticates. A token that cannot be read
 * is keyed as a whole.
 */
function albTokenIssuer(token: string | undefined): unknown {
  if (token === undefined) return null;
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as Json;
    if (typeof header === 'object' && header !== null) return { iss: header.iss ?? null, client: header.client ?? null, signer: header.signer ?? null };
  } catch {
    // not a JWT: keyed as a whole below
  }
  return token;
}

function objectOr(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}
