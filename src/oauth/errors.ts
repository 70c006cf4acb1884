/** What {@link TokenEndpointError} reports of a failed token request. */
export interface TokenEndpointErrorDetails {
  /** The token endpoint. */
  readonly tokenUrl: string;
  /** The HTTP status, or `undefined` when there was no answer (timeout, network error). */
  readonly status?: number;
  /** The OAuth error code the endpoint answered (`invalid_client`, `invalid_scope`...; RFC 6749 section 5.2). */
  readonly error?: string;
  /** The endpoint's `error_description`. */
  readonly errorDescription?: string;
  /** The endpoint's `error_uri`. */
  readonly errorUri?: string;
}

/**
 * The token endpoint did not issue a token: it answered an error (with its `error` and `error_description`),
 * throttled (429), failed (5xx), answered something that is not a token, or did not answer in time. The
 * message and fields never hold the client secret.
 */
export class TokenEndpointError extends Error {
  override name = 'TokenEndpointError';
  readonly tokenUrl: string;
  readonly status: number | undefined;
  readonly error: string | undefined;
  readonly errorDescription: string | undefined;
  readonly errorUri: string | undefined;

  constructor(message: string, details: TokenEndpointErrorDetails, options?: ErrorOptions) {
    super(message, options);
    this.tokenUrl = details.tokenUrl;
    this.status = details.status;
    this.error = details.error;
    this.errorDescription = details.errorDescription;
    this.errorUri = details.errorUri;
  }
}
