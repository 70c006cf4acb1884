import { headersOf, opaqueTag, setHeader, unstorableFields, withoutHeaders, type HttpResponse } from './http-response.ts';
import type { Validators } from './stored-response.ts';

/**
 * Revalidation through the handler (RFC 9111 4.3): the handler is the origin. A stale stored response with
 * the handler's own validators is not thrown away: the handler gets the request with `If-None-Match` /
 * `If-Modified-Since` and may answer `304 Not Modified`, which freshens the stored response, instead of
 * building the whole body again.
 */

/** The handler's own validators in `response`, read before the middleware adds a generated ETag; `undefined` without any. */
export function validatorsOf(response: HttpResponse): Validators | undefined {
  const headers = headersOf(response);
  const etag = headers.etag;
  const lastModified = headers['last-modified'];
  if (etag === undefined && lastModified === undefined) return undefined;
  return { ...(etag === undefined ? {} : { etag }), ...(lastModified === undefined ? {} : { lastModified }) };
}

/**
 * The request fields of the conditional request (RFC 9111 4.3.1): the stored response's validators, in
 * place of the client's own (`undefined` removes one), whose conditions are answered from the result.
 */
export function conditionalFields(validators: Validators): Record<'if-none-match' | 'if-modified-since', string | undefined> {
  return { 'if-none-match': validators.etag, 'if-modified-since': validators.lastModified };
}

/**
 * Whether a 304 validates the stored response whose `validators` were sent (RFC 9111 4.3.4): a strong
 * ETag in it must equal the stored one (strong comparison), a weak one match it weakly; without an ETag it
 * answers the only response the request named.
 */
export function validatesStored(validators: Validators, notModified: HttpResponse): boolean {
  const etag = headersOf(notModified).etag;
  if (etag === undefined) return true;
  const stored = validators.etag;
  if (stored === undefined) return false;
  if (etag.trim().startsWith('W/')) return opaqueTag(etag) === opaqueTag(stored);
  return !stored.trim().startsWith('W/') && etag.trim() === stored.trim();
}

/**
 * The stored response freshened by a 304 (RFC 9111 3.2): each of the 304's header fields replaces the
 * stored one, except those a cache never stores (hop-by-hop, `Proxy-*`, those its `Connection` names) and
 * `Content-Length`, which describes the stored content. Status and content stay the stored ones. The stored
 * `Age` goes unless the 304 has its own: the response is as old as the validation says, not as it was.
 */
export function freshened(stored: HttpResponse, notModified: HttpResponse): HttpResponse {
  const result = withoutHeaders(structuredClone(stored), ['age']);
  const skip = unstorableFields(notModified);
  const values = new Map<string, { name: string; values: string[] }>();
  const add = (name: string, value: unknown) => {
    const lower = name.toLowerCase();
    if (skip(lower) || lower === 'content-length') return;
    const entry = values.get(lower) ?? { name, values: [] };
    entry.values.push(String(value));
    values.set(lower, entry);
  };
  // A REST or ALB response may carry a field in both bags; the multi-value one is what the integration sends.
  for (const [name, list] of Object.entries(notModified.multiValueHeaders ?? {})) for (const value of list ?? []) add(name, value);
  const multi = new Set(values.keys());
  for (const [name, value] of Object.entries(notModified.headers ?? {})) if (!multi.has(name.toLowerCase())) add(name, value);
  for (const { name, values: list } of values.values()) setHeader(result, name, list.join(', '));
  if (notModified.cookies !== undefined && notModified.cookies.length > 0) result.cookies = [...notModified.cookies];
  return result;
}
