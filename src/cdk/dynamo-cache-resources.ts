import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnResource, RemovalPolicy, Validations, type IResource } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { InvalidOptionsError } from '../errors.ts';
import { NAMESPACE_ENV, TABLE_ENV } from '../options.ts';
import { DEFAULT_ATTRIBUTE_NAMES } from '../storage/item.ts';
import { assertNamespace } from '../storage/keys.ts';

/** Props of {@link DynamoCacheResources}. */
export interface DynamoCacheResourcesProps {
  /**
   * An existing cache table to use (`Table.fromTableName(...)`, or a table of this app) instead of creating
   * one; turn its TTL on for `expires_at` yourself. Default: a new table.
   */
  readonly table?: dynamodb.ITable | undefined;
  /** Name of the created table. Default: one CloudFormation generates. */
  readonly tableName?: string | undefined;
  /** Point-in-time recovery on the created table (a cache can be rebuilt from its upstreams). Default: `false`. */
  readonly pointInTimeRecovery?: boolean | undefined;
  /**
   * A customer managed KMS key for the created table. Default: the AWS managed key `aws/dynamodb` (as
   * template.yaml; DynamoDB uses it on the callers' behalf, functions need no KMS permission).
   */
  readonly encryptionKey?: kms.IKey | undefined;
  /**
   * What happens to the created table when it leaves the stack. Default: `RETAIN`: its items are the
   * applications' data, not the stack's.
   */
  readonly removalPolicy?: RemovalPolicy | undefined;
  /** Whether to create the Lambda layer (dynamo-cache and @middy/core, for `attachTo`). Default: `true`. */
  readonly layer?: boolean | undefined;
}

/** Options of {@link DynamoCacheResources.grant}. */
export interface DynamoCacheGrantOptions {
  /** The key namespace the function may read and write (only keys `<namespace>:...`), and its `DYNAMO_CACHE_NAMESPACE`. */
  readonly namespace: string;
}

/**
 * The item actions the library sends: template.yaml's `CacheAccessPolicy` grants exactly these (never Scan,
 * Query or table-level actions); `test/cdk.test.ts` compares the two.
 */
export const CACHE_ITEM_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] as const;

/**
 * What a function that attaches the layer leaves out of its bundle (`NodejsFunction`'s
 * `bundling.externalModules`): the AWS SDK (the runtime's), and dynamo-cache and @middy/core (the layer's).
 */
export const LAYER_EXTERNAL_MODULES: readonly string[] = ['@aws-sdk/*', 'dynamo-cache', '@middy/core'];

const functionNamespaces = new WeakMap<lambda.Function, string>();

/**
 * The AWS CDK face of dynamo-cache: the cache table (TTL on `expires_at`, encrypted, retained), or an existing
 * one; the Lambda layer with dynamo-cache and @middy/core, built from this package's own layer content; and
 * `grant`, which gives a function the least privilege template.yaml's `CacheAccessPolicy` gives (the
 * library's item actions, on the table, on keys of one namespace) and sets `DYNAMO_CACHE_TABLE` and
 * `DYNAMO_CACHE_NAMESPACE`, so `new DynamoCache()` needs no options.
 *
 * @example
 * const cache = new DynamoCacheResources(this, 'Cache');
 * const fn = new NodejsFunction(this, 'Api', { entry: 'src/api.ts', runtime: Runtime.NODEJS_22_X, bundling: { externalModules: [...LAYER_EXTERNAL_MODULES] } });
 * cache.grant(fn, { namespace: 'api' });
 * cache.attachTo(fn);
 */
export class DynamoCacheResources extends Construct {
  /** The cache table: created, or the one given. */
  readonly table: dynamodb.ITable;
  /** The layer (`undefined` with `layer: false`). */
  readonly layer: lambda.LayerVersion | undefined;

  /** @throws InvalidOptionsError when `table` is given with settings that apply only to a created table. */
  constructor(scope: Construct, id: string, props: DynamoCacheResourcesProps = {}) {
    super(scope, id);
    if (props.table !== undefined) {
      const ignored = (['tableName', 'pointInTimeRecovery', 'encryptionKey', 'removalPolicy'] as const).find((name) => props[name] !== undefined);
      if (ignored !== undefined) throw new InvalidOptionsError(`DynamoCacheResources: ${ignored} applies to a created table, not to the given table`);
      this.table = props.table;
    } else {
      const table = new dynamodb.Table(this, 'Table', {
        ...(props.tableName === undefined ? {} : { tableName: props.tableName }),
        partitionKey: { name: DEFAULT_ATTRIBUTE_NAMES.key, type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        // DynamoDB deletes items some time after expires_at (epoch seconds); the library filters them on read meanwhile.
        timeToLiveAttribute: DEFAULT_ATTRIBUTE_NAMES.expiresAt,
        ...(props.encryptionKey === undefined
          ? { encryption: dynamodb.TableEncryption.AWS_MANAGED }
          : { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery ?? false },
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      if (props.pointInTimeRecovery !== true) {
        acknowledge(table, 'AwsSolutions-DDB3', 'A cache table: every item is rebuilt from its upstream on a miss, and expires within hours; point-in-time recovery would restore nothing worth its cost (pointInTimeRecovery: true turns it on).');
      }
      this.table = table;
    }
    if (props.layer !== false) {
      this.layer = new lambda.LayerVersion(this, 'Layer', {
        code: lambda.Code.fromAsset(layerAsset()),
        compatibleRuntimes: [lambda.Runtime.NODEJS_22_X, lambda.Runtime.NODEJS_24_X],
        compatibleArchitectures: [lambda.Architecture.X86_64, lambda.Architecture.ARM_64],
        description: 'dynamo-cache (two-tier Lambda cache on DynamoDB) and @middy/core for nodejs22.x and nodejs24.x',
        license: 'MIT',
        // A new version replaces it on every change; functions of other stacks may still use the old one.
        removalPolicy: RemovalPolicy.RETAIN,
      });
    } else {
      this.layer = undefined;
    }
  }

  /**
   * Lets `fn` use the cache on keys of `namespace` only: the library's item actions on the table, with
   * `dynamodb:LeadingKeys` limited to `<namespace>:*` (as template.yaml's `CacheAccessPolicy`), and sets
   * its `DYNAMO_CACHE_TABLE` and `DYNAMO_CACHE_NAMESPACE`.
   * @throws InvalidOptionsError for a bad namespace, or a function already granted another namespace.
   */
  grant(fn: lambda.Function, options: DynamoCacheGrantOptions): iam.PolicyStatement {
    const namespace = (options as Partial<DynamoCacheGrantOptions> | undefined)?.namespace;
    if (typeof namespace !== 'string' || namespace === '') throw new InvalidOptionsError('DynamoCacheResources.grant needs options.namespace: the key namespace the function uses');
    assertNamespace(namespace);
    const granted = functionNamespaces.get(fn);
    if (granted !== undefined && granted !== namespace) {
      throw new InvalidOptionsError(`DynamoCacheResources.grant: ${fn.node.path} already uses namespace ${granted} (DYNAMO_CACHE_NAMESPACE holds one)`);
    }
    functionNamespaces.set(fn, namespace);
    const statement = new iam.PolicyStatement({
      sid: 'CacheItemsInNamespace',
      effect: iam.Effect.ALLOW,
      actions: [...CACHE_ITEM_ACTIONS],
      resources: [this.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${namespace}:*`] } },
    });
    fn.addToRolePolicy(statement);
    fn.addEnvironment(TABLE_ENV, this.table.tableName);
    fn.addEnvironment(NAMESPACE_ENV, namespace);
    return statement;
  }

  /**
   * Attaches the layer to `fn`. A function that attaches it leaves the AWS SDK, dynamo-cache and @middy/core
   * out of its bundle: give a `NodejsFunction` `bundling: { externalModules: [...LAYER_EXTERNAL_MODULES] }`.
   * @throws InvalidOptionsError when the layer was not created (`layer: false`).
   */
  attachTo(fn: lambda.Function): void {
    if (this.layer === undefined) throw new InvalidOptionsError('DynamoCacheResources.attachTo: this construct has no layer (layer: false)');
    fn.addLayers(this.layer);
  }
}

/**
 * Records a reasoned exception to a cdk-nag rule on `resource`: with aws-cdk-lib's `Validations` (cdk-nag 3),
 * and as the `cdk_nag` metadata cdk-nag 2 reads.
 */
function acknowledge(resource: IResource, id: string, reason: string): void {
  Validations.of(resource).acknowledge({ id, reason });
  const cfn = resource.node.defaultChild;
  if (CfnResource.isCfnResource(cfn)) cfn.addMetadata('cdk_nag', { rules_to_suppress: [{ id, reason }] });
}

/**
 * The layer's content as this package ships it: `dist/layer.zip` (`nodejs/node_modules/...`), built by
 * `npm run build`. Found from this file, in the published package (dist/) and in the source tree (src/cdk/).
 */
function layerAsset(): string {
  let folder = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'dynamo-cache') break;
    const parent = dirname(folder);
    if (parent === folder) throw new Error('dynamo-cache/cdk: the dynamo-cache package folder was not found');
    folder = parent;
  }
  const zip = join(folder, 'dist', 'layer.zip');
  if (!existsSync(zip)) throw new Error(`dynamo-cache/cdk: ${zip} is missing (in a clone of the repository, run npm run build)`);
  return zip;
}
