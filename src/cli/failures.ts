/** Exit codes of the `dynamo-cache` command. */
export const EXIT = {
  ok: 0,
  /** DynamoDB or AWS failed, or the operation did not succeed. */
  failed: 1,
  /** Bad arguments or input (unknown option, bad JSON...). */
  usage: 2,
  /** `get`: the key holds no value. */
  notFound: 3,
} as const;

/** A failure the CLI reports as one line, without a stack trace. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT.failed, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

interface AwsErrorShape {
  name?: string;
  code?: string;
  message?: string;
}

/** What a failure message can name: the table, the endpoint and the AWS profile in use. */
export interface FailureContext {
  readonly tableName?: string | undefined;
  readonly endpoint?: string | undefined;
  /** The AWS profile (`--profile` or `AWS_PROFILE`), when one is in use. */
  readonly profile?: string | undefined;
  /** The longest wait for one request (`--timeout`), in seconds. */
  readonly timeoutSeconds?: number | undefined;
}

/** Turns an error from the AWS SDK into a message that says what is wrong and what to do. */
export function explain(error: unknown, context: FailureContext): CliError {
  if (error instanceof CliError) return error;
  const e = (error ?? {}) as AwsErrorShape;
  const name = e.name ?? '';
  const message = e.message ?? String(error);
  const table = context.tableName ?? '(none)';
  const where = context.endpoint ?? 'AWS';
  if (name === 'ResourceNotFoundException') return new CliError(`table "${table}" does not exist at ${where} (create it with: dynamo-cache create-table --table ${table})`, EXIT.failed, { cause: error });
  if (name === 'ResourceInUseException') return new CliError(`table "${table}" already exists at ${where}`, EXIT.failed, { cause: error });
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    // A named profile that yields nothing is a typo or a missing entry, not a missing setup.
    if (context.profile !== undefined) {
      return new CliError(`no AWS credentials for profile "${context.profile}" (from --profile or AWS_PROFILE): check that ~/.aws/config or ~/.aws/credentials defines it, or name another`, EXIT.failed, { cause: error });
    }
    return new CliError('no AWS credentials found: configure a profile (--profile or AWS_PROFILE), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role (or use --endpoint for a local server)', EXIT.failed, { cause: error });
  }
  if (/region is missing/i.test(message)) return new CliError('no AWS region: pass --region or set AWS_REGION', EXIT.usage, { cause: error });
  if (name === 'UnrecognizedClientException' || name === 'InvalidSignatureException' || name === 'ExpiredTokenException') {
    const inUse = context.profile === undefined ? 'the keys in use' : `profile "${context.profile}"`;
    return new CliError(`AWS rejected the credentials (${name}): check ${inUse}`, EXIT.failed, { cause: error });
  }
  if (name === 'AccessDeniedException') return new CliError(`access denied: ${message}`, EXIT.failed, { cause: error });
  if (name === 'TimeoutError' || e.code === 'ETIMEDOUT' || /requestTimeout|timed out/i.test(message)) {
    const within = context.timeoutSeconds === undefined ? '' : ` within ${context.timeoutSeconds} s (--timeout)`;
    return new CliError(`DynamoDB at ${where} did not answer${within}`, EXIT.failed, { cause: error });
  }
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' || /ECONNREFUSED|ENOTFOUND/.test(message)) {
    return new CliError(`cannot reach DynamoDB at ${where}: ${e.code ?? message}`, EXIT.failed, { cause: error });
  }
  return new CliError(name && name !== 'Error' ? `${name}: ${message}` : message, EXIT.failed, { cause: error });
}
