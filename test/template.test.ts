import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NAMESPACE_ENV, TABLE_ENV } from '../src/options.ts';
import { DEFAULT_ATTRIBUTE_NAMES } from '../src/storage/item.ts';
import { parseTemplate, validateTemplate, type Template } from './support/cloudformation.ts';

const root = join(import.meta.dirname, '..');
const load = (): Template => parseTemplate(readFileSync(join(root, 'template.yaml'), 'utf8'));
const template = load();
const resources = template.Resources as Record<string, { Type: string; Condition?: string; DeletionPolicy?: string; UpdateReplacePolicy?: string; Properties: any }>;
/** The cache table's ARN when the template uses an existing table (`ExistingTableName`) instead of creating one. */
const existingTableArn = { 'Fn::Sub': 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingTableName}' };
/** A value that is the created table's `created` when the template creates it, and the existing table's `existing` otherwise. */
const tableChoice = (created: unknown, existing: unknown) => ({ 'Fn::If': ['CreateTable', created, existing] });

/** Every IAM policy statement in the template: function policies and any IAM resources. */
function statements(): any[] {
  const found: any[] = [];
  for (const resource of Object.values(resources)) {
    for (const policy of [resource.Properties?.Policies ?? [], resource.Properties?.PolicyDocument ?? []].flat()) {
      if (typeof policy === 'object' && policy !== null) found.push(...[policy.Statement ?? []].flat());
    }
  }
  return found;
}

/** The DynamoDB operations the library's code sends (`new XxxCommand(`), as IAM actions. */
function actionsUsedByLibrary(): Set<string> {
  const actions = new Set<string>();
  for (const file of readdirSync(join(root, 'src'), { recursive: true }) as string[]) {
    if (!file.endsWith('.ts') || file.startsWith('cli')) continue;
    for (const [, operation] of readFileSync(join(root, 'src', file), 'utf8').matchAll(/new (\w+)Command\(/g)) actions.add(`dynamodb:${operation}`);
  }
  return actions;
}

describe('template.yaml', () => {
  it('is valid against the AWS resource specification (types, properties, required properties, references)', async () => {
    expect(await validateTemplate(template)).toEqual([]);
  });

  it('the validator is not vacuous: a broken copy is rejected', async () => {
    const broken = load();
    broken.Resources.CacheTable.Properties.ProvisionedThroughput = { ReadCapacityUnits: 'many' };
    broken.Resources.CacheLayer.Properties.CompatibleRuntimes = 'nodejs22.x';
    broken.Resources.ExampleFunction.Properties.Layers = [{ Ref: 'NoSuchLayer' }];
    broken.Resources.ExampleFunction.Properties.Timeoutt = 10;
    broken.Resources.ExampleFunction.Properties.Environment.Variables.DYNAMO_CACHE_TABLE = { Ref: 'CacheTable' };
    broken.Resources.CacheTable.DeletionPolicy = 'Keep';
    broken.Outputs.CacheTableArn.Export = {};
    const problems = await validateTemplate(broken);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/ReadCapacityUnits: expected a number/),
        expect.stringMatching(/CacheLayer.CompatibleRuntimes: expected a list/),
        expect.stringMatching(/Ref to unknown NoSuchLayer/),
        expect.stringMatching(/Timeoutt: not a property/),
        expect.stringMatching(/Resources.ExampleFunction: Ref to CacheTable outside condition CreateTable/),
        expect.stringMatching(/CacheTable.DeletionPolicy: Keep is not one of/),
        expect.stringMatching(/Outputs.CacheTableArn.Export: Name is missing/),
      ]),
    );
  });

  describe('CacheTable', () => {
    const table = resources.CacheTable!;

    it('is an AWS::DynamoDB::Table, on demand, named <AppName>-cache-<AppEnv> as the original', () => {
      expect(table.Type).toBe('AWS::DynamoDB::Table');
      expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(table.Properties.TableName).toEqual({ 'Fn::Sub': '${AppName}-cache-${AppEnv}' });
    });

    it('is retained when the stack is deleted or the table would be replaced: the items are the applications’ data', () => {
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
    });

    it('is created only without ExistingTableName: a stack can adopt an existing (seed) table instead', () => {
      expect(table.Condition).toBe('CreateTable');
      expect(template.Conditions.CreateTable).toEqual({ 'Fn::Equals': [{ Ref: 'ExistingTableName' }, ''] });
      expect(template.Parameters.ExistingTableName).toMatchObject({ Type: 'String', Default: '' });
      // Every use of the table picks the existing one when there is one (the validator also rejects unguarded references).
      expect(resources.ExampleFunction!.Properties.Environment.Variables[TABLE_ENV]).toEqual(tableChoice({ Ref: 'CacheTable' }, { Ref: 'ExistingTableName' }));
      expect(resources.CacheAccessPolicy!.Properties.PolicyDocument.Statement[0].Resource).toEqual(tableChoice({ 'Fn::GetAtt': ['CacheTable', 'Arn'] }, existingTableArn));
    });

    it('has the key schema the library expects', () => {
      expect(table.Properties.KeySchema).toEqual([{ AttributeName: DEFAULT_ATTRIBUTE_NAMES.key, KeyType: 'HASH' }]);
      expect(table.Properties.AttributeDefinitions).toEqual([{ AttributeName: DEFAULT_ATTRIBUTE_NAMES.key, AttributeType: 'S' }]);
    });

    it('has TTL on the library’s default expiry attribute', () => {
      expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: DEFAULT_ATTRIBUTE_NAMES.expiresAt, Enabled: true });
    });

    it('is encrypted with a KMS key: the AWS managed key, or a customer managed one given as KmsKeyArn', () => {
      const [condition, withKey, withoutKey] = table.Properties.SSESpecification['Fn::If'];
      expect(condition).toBe('UseCustomerManagedKey');
      expect(withKey).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { Ref: 'KmsKeyArn' } });
      expect(withoutKey).toEqual({ SSEEnabled: true });
      expect(template.Conditions.UseCustomerManagedKey).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'KmsKeyArn' }, ''] }] });
    });
  });

  describe('CacheLayer', () => {
    const layer = resources.CacheLayer!;

    it('is built from layer/ for nodejs22.x and nodejs24.x on both architectures, and retained', () => {
      expect(layer.Type).toBe('AWS::Serverless::LayerVersion');
      expect(layer.Properties.ContentUri).toBe('layer/');
      expect(layer.Properties.CompatibleRuntimes).toEqual(['nodejs22.x', 'nodejs24.x']);
      expect(layer.Properties.CompatibleArchitectures).toEqual(['x86_64', 'arm64']);
      expect(layer.Properties.RetentionPolicy).toBe('Retain');
    });

    it('can be shared with an account or an organization, each only when its parameter is set', () => {
      const account = resources.CacheLayerAccountPermission!;
      const organization = resources.CacheLayerOrganizationPermission!;
      expect(account).toMatchObject({ Type: 'AWS::Lambda::LayerVersionPermission', Condition: 'ShareWithAccount' });
      expect(account.Properties).toEqual({ Action: 'lambda:GetLayerVersion', LayerVersionArn: { Ref: 'CacheLayer' }, Principal: { Ref: 'ShareWithAccountId' } });
      expect(organization).toMatchObject({ Type: 'AWS::Lambda::LayerVersionPermission', Condition: 'ShareWithOrganization' });
      expect(organization.Properties).toMatchObject({ Principal: '*', OrganizationId: { Ref: 'ShareWithOrganizationId' } });
    });
  });

  describe('ExampleFunction', () => {
    const fn = resources.ExampleFunction!;

    it('attaches the layer instead of bundling the library', () => {
      expect(fn.Properties.Layers).toEqual([{ Ref: 'CacheLayer' }]);
      expect(['nodejs22.x', 'nodejs24.x']).toContain(fn.Properties.Runtime);
      const codeDir = join(root, fn.Properties.CodeUri);
      expect(readdirSync(codeDir)).toEqual(['index.mjs']);
      expect(existsSync(join(codeDir, 'package.json'))).toBe(false);
      expect(readFileSync(join(codeDir, 'index.mjs'), 'utf8')).toMatch(/from 'dynamo-cache'/);
    });

    it('is configured by environment variables only', () => {
      expect(fn.Properties.Environment.Variables).toEqual({ [TABLE_ENV]: tableChoice({ Ref: 'CacheTable' }, { Ref: 'ExistingTableName' }), [NAMESPACE_ENV]: { Ref: 'CacheNamespace' } });
    });

    it('gets its table access from the managed policy other stacks attach, nothing else', () => {
      expect(fn.Properties.Policies).toEqual([{ Ref: 'CacheAccessPolicy' }]);
    });

    it('memoizes a GET route of an HTTP API', () => {
      expect(fn.Properties.Events.GetUser).toEqual({ Type: 'HttpApi', Properties: { Path: '/users/{id}', Method: 'GET' } });
    });
  });

  describe('StreamInvalidationFunction', () => {
    const fn = resources.StreamInvalidationFunction!;

    it('exists only with InvalidationStreamArn, and consumes that stream, a failed batch retried bisected', () => {
      expect(fn.Condition).toBe('InvalidateFromStream');
      expect(template.Conditions.InvalidateFromStream).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'InvalidationStreamArn' }, ''] }] });
      expect(template.Parameters.InvalidationStreamArn.Default).toBe('');
      const { Type, Properties } = fn.Properties.Events.ItemChanges;
      expect(Type).toBe('DynamoDB');
      expect(Properties).toMatchObject({ Stream: { Ref: 'InvalidationStreamArn' }, StartingPosition: 'LATEST', BisectBatchOnFunctionError: true });
    });

    it('is the example consumer, through the layer, with the cache’s policy and environment only', () => {
      expect(fn.Properties.Layers).toEqual([{ Ref: 'CacheLayer' }]);
      const codeDir = join(root, fn.Properties.CodeUri);
      expect(readdirSync(codeDir)).toEqual(['index.mjs']);
      expect(readFileSync(join(codeDir, 'index.mjs'), 'utf8')).toMatch(/from 'dynamo-cache'/);
      expect(fn.Properties.Policies).toEqual([{ Ref: 'CacheAccessPolicy' }]);
      expect(fn.Properties.Environment.Variables).toEqual(resources.ExampleFunction!.Properties.Environment.Variables);
    });
  });

  describe('least privilege', () => {
    const dynamoStatements = () => statements().filter((s) => [s.Action].flat().some((a: string) => a.startsWith('dynamodb:')));

    it('no policy allows Scan, or any wildcard action', () => {
      const actions = statements().flatMap((s) => [s.Action].flat());
      expect(actions.length).toBeGreaterThan(0);
      expect(actions.filter((a: string) => /scan/i.test(a))).toEqual([]);
      expect(actions.filter((a: string) => a.includes('*'))).toEqual([]);
    });

    it('allows exactly the item actions the library sends, no more', () => {
      const allowed = new Set(dynamoStatements().flatMap((s) => [s.Action].flat()));
      expect(allowed).toEqual(actionsUsedByLibrary());
    });

    it('every DynamoDB statement is on the cache table only, restricted by LeadingKeys to the namespace', () => {
      const found = dynamoStatements();
      expect(found.length).toBeGreaterThan(0);
      for (const statement of found) {
        expect(statement.Effect).toBe('Allow');
        expect(statement.Resource).toEqual(tableChoice({ 'Fn::GetAtt': ['CacheTable', 'Arn'] }, existingTableArn));
        expect(statement.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [{ 'Fn::Sub': '${CacheNamespace}:*' }] } });
      }
    });

    it('the statements live in CacheAccessPolicy, a managed policy for the namespace parameter', () => {
      const policy = resources.CacheAccessPolicy!;
      expect(policy.Type).toBe('AWS::IAM::ManagedPolicy');
      expect(policy.Properties.PolicyDocument.Version).toBe('2012-10-17');
      expect(policy.Properties.PolicyDocument.Statement).toEqual(dynamoStatements());
      expect(template.Parameters.CacheNamespace.AllowedPattern).toBe('^[A-Za-z0-9_.-]{1,128}$');
    });
  });

  it('outputs the table name and ARN, the access policy and the layer, each exported for other stacks, and the API URL', () => {
    const exported = (id: string, value: unknown) => {
      expect(template.Outputs[id].Value).toEqual(value);
      expect(template.Outputs[id].Export).toEqual({ Name: { 'Fn::Sub': `\${AWS::StackName}-${id}` } });
    };
    exported('CacheTableName', tableChoice({ Ref: 'CacheTable' }, { Ref: 'ExistingTableName' }));
    exported('CacheTableArn', tableChoice({ 'Fn::GetAtt': ['CacheTable', 'Arn'] }, existingTableArn));
    exported('CacheAccessPolicyArn', { Ref: 'CacheAccessPolicy' });
    exported('CacheLayerArn', { Ref: 'CacheLayer' });
    expect(template.Outputs.ApiUrl.Value['Fn::Sub']).toMatch(/^https:\/\/\$\{ServerlessHttpApi\}\.execute-api\./);
  });
});
