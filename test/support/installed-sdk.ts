import { NormalizedSchema } from '@smithy/core/schema';
import manifest from '../../package.json' with { type: 'json' };
import { localAwsConfig } from './local-aws.ts';

/** A command class of an installed AWS SDK client, with what the rules and the tests need to know of it. */
export interface InstalledCommand {
  /** The client package (`@aws-sdk/client-s3`). */
  readonly pkg: string;
  /** The client's `config.serviceId` (`S3`). */
  readonly serviceId: string;
  /** The command's class name (`GetObjectCommand`). */
  readonly name: string;
  /** The operation's schema, as the SDK carries it (`[9, namespace, name, traits, input, output]`). */
  readonly schema: readonly unknown[];
}

/** The AWS SDK client packages this repository installs (its devDependencies). */
export const INSTALLED_CLIENTS = Object.keys(manifest.devDependencies).filter((name) => name.startsWith('@aws-sdk/client-'));

/** Every command of every installed AWS SDK client. */
export async function installedCommands(): Promise<InstalledCommand[]> {
  const commands: InstalledCommand[] = [];
  for (const pkg of INSTALLED_CLIENTS) {
    const module = (await import(pkg)) as Record<string, unknown>;
    const Client = Object.entries(module).find(([name, value]) => /^[A-Z]\w*Client$/.test(name) && typeof value === 'function')![1] as new (config: object) => { config: { serviceId: string } };
    const { serviceId } = new Client(localAwsConfig('http://127.0.0.1:9')).config;
    for (const [name, value] of Object.entries(module)) {
      if (!name.endsWith('Command') || typeof value !== 'function' || !('getEndpointParameterInstructions' in value)) continue;
      const schema = new (value as unknown as new (input: object) => { schema: readonly unknown[] })({}).schema;
      commands.push({ pkg, serviceId, name, schema });
    }
  }
  return commands;
}

/**
 * The members of an operation's output that the SDK's model marks sensitive, as paths (`Credentials.SessionToken`,
 * `Parameters[].Value`); with `requiredOnly`, only those reached through members the model requires (present
 * on every successful answer).
 */
export function sensitiveOutputPaths(command: InstalledCommand, requiredOnly = false): string[] {
  const paths: string[] = [];
  const walk = (schema: NormalizedSchema, path: string, depth: number): void => {
    if (depth > 8) return;
    if (schema.getMergedTraits().sensitive) {
      paths.push(path);
      return;
    }
    if (schema.isStructSchema()) {
      // A structure schema is [3, namespace, name, traits, memberNames, memberSchemas, requiredCount]: its first members are the required ones.
      const required = (schema.getSchema() as unknown[])[6];
      let index = 0;
      for (const [member, memberSchema] of schema.structIterator()) {
        if (!requiredOnly || index < (typeof required === 'number' ? required : 0)) walk(memberSchema, path === '' ? member : `${path}.${member}`, depth + 1);
        index += 1;
      }
    } else if (!requiredOnly && schema.isListSchema()) {
      walk(schema.getValueSchema(), `${path}[]`, depth + 1);
    } else if (!requiredOnly && schema.isMapSchema()) {
      walk(schema.getValueSchema(), `${path}{}`, depth + 1);
    }
  };
  walk(NormalizedSchema.of(command.schema[5] as never), '', 0);
  return paths;
}
