import { readFile } from 'node:fs/promises';
import { KEY_ID_PATTERN } from '../codec/encryption.ts';
import { CliError, EXIT } from './failures.ts';

/** The environment variable holding encryption keys: `<id>=<base64 key>` entries, separated by commas or whitespace. */
export const KEYS_ENV = 'DYNAMO_CACHE_KEYS';
/** The environment variable holding the HMAC secret of a cache with hashed keys. */
export const HASH_KEYS_SECRET_ENV = 'DYNAMO_CACHE_HASH_KEYS_SECRET';

/** Where the command line says the keys and the secret are. */
export interface SecretOptions {
  /** `--key <id>=<base64>` (repeatable): visible in the process list, so the environment or a file is better. */
  readonly key?: readonly string[] | undefined;
  /** `--key-file <path>`: one `<id>=<base64 key>` per line; blank lines and `#` comments are skipped. */
  readonly keyFile?: string | undefined;
  /** `--hash-keys-secret <secret>`: visible in the process list too. */
  readonly hashKeysSecret?: string | undefined;
  /** `--hash-keys-secret-file <path>`: the secret, as the file holds it (one final newline dropped). */
  readonly hashKeysSecretFile?: string | undefined;
}

/** The encryption keys (in the order given) and the HMAC secret, checked. */
export interface Secrets {
  readonly keys: ReadonlyMap<string, string>;
  readonly hashKeysSecret: string | undefined;
}

/**
 * The keys and the secret from every source given: `--key`, `--key-file` and `DYNAMO_CACHE_KEYS` together;
 * one of `--hash-keys-secret`, `--hash-keys-secret-file` or `DYNAMO_CACHE_HASH_KEYS_SECRET`. An error names the
 * source and the entry, never what it holds: a malformed entry may be the key itself.
 */
export async function secretsFrom(options: SecretOptions, env: NodeJS.ProcessEnv): Promise<Secrets> {
  const keys = new Map<string, string>();
  const add = (entry: string, where: string) => {
    const at = entry.indexOf('=');
    const id = entry.slice(0, Math.max(at, 0));
    // A key given without its id splits at its own base64 padding (`=` or `==`): the "id" would be most of the
    // key, so the entry is checked here, and neither part is ever shown.
    if (at < 1 || entry[at + 1] === undefined || entry[at + 1] === '=' || !KEY_ID_PATTERN.test(id)) {
      throw new CliError(`${where} must be <id>=<base64 key>, the id 1-64 of A-Z a-z 0-9 _ - (the value given is not shown)`, EXIT.usage);
    }
    if (keys.has(id)) throw new CliError(`${where}: key id ${JSON.stringify(id)} is given twice`, EXIT.usage);
    // Checked here too, before any request: a bad key is a usage error whatever DynamoDB says.
    if (Buffer.from(entry.slice(at + 1), 'base64').byteLength !== 32) throw new CliError(`${where}: encryption key ${JSON.stringify(id)} must be 32 bytes, in base64 (the value given is not shown)`, EXIT.usage);
    keys.set(id, entry.slice(at + 1));
  };
  for (const entry of options.key ?? []) add(entry, '--key');
  if (options.keyFile !== undefined) {
    const lines = (await readSecretFile(options.keyFile, '--key-file')).split(/\r?\n/);
    lines.forEach((line, index) => {
      const entry = line.trim();
      if (entry !== '' && !entry.startsWith('#')) add(entry, `--key-file ${options.keyFile} line ${index + 1}`);
    });
  }
  const fromEnv = (env[KEYS_ENV] ?? '').split(/[\s,]+/).filter((entry) => entry !== '');
  fromEnv.forEach((entry, index) => add(entry, `${KEYS_ENV} entry ${index + 1}`));

  if (options.hashKeysSecret !== undefined && options.hashKeysSecretFile !== undefined) {
    throw new CliError('give the HMAC secret with --hash-keys-secret or --hash-keys-secret-file, not both', EXIT.usage);
  }
  const hashKeysSecret =
    options.hashKeysSecretFile !== undefined
      ? (await readSecretFile(options.hashKeysSecretFile, '--hash-keys-secret-file')).replace(/\r?\n$/, '')
      : (options.hashKeysSecret ?? (env[HASH_KEYS_SECRET_ENV] || undefined));
  return { keys, hashKeysSecret };
}

async function readSecretFile(path: string, option: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${option} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.usage);
  }
}
