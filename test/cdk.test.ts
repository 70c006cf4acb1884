import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { CACHE_ITEM_ACTIONS, DynamoCacheResources, LAYER_EXTERNAL_MODULES } from '../src/cdk/dynamo-cache-resources.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { NAMESPACE_ENV, TABLE_ENV } from '../src/options.ts';
import { parseTemplate } from './support/cloudformation.ts';

const root = join(import.meta.dirname, '..');
/** template.yaml, whose table and CacheAccessPolicy the construct must match. */
const sam = parseTemplate(readFileSync(join(root, 'template.yaml'), 'utf8'));

/** A stack with the construct and one function that uses the cache through the layer. */
function cacheStack(props: ConstructorParameters<typeof DynamoCacheResources>[2] = {}) {
  const app = new App();
  const stack = new Stack(app, 'CacheStack', { env: { account: '123456789012', region: 'eu-west-1' } });
  const cache = new DynamoCacheResources(stack, 'Cache', props);
  const fn = new lambda.Function(stack, 'Api', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1;') });
  return { app, stack, cache, fn };
}

/** The IAM statements of a template's function policies, and of its managed policies. */
function statements(template: Record<string, any>): any[] {
  return Object.values<any>(template.Resources).flatMap((resource) => [resource.Properties?.PolicyDocument?.Statement ?? []].flat());
}

describe('DynamoCacheResources (dynamo-cache/cdk)', () => {
  it('creates the table template.yaml creates: key id, TTL on expires_at, on-demand, encrypted, retained', () => {
    const { stack } = cacheStack();
    const template = Template.fromStack(stack);
    const expected = sam.Resources.CacheTable;
    const { TableName: _name, SSESpecification: _sse, ...properties } = expected.Properties;
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({ ...properties, SSESpecification: { SSEEnabled: true }, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false } }),
      DeletionPolicy: expected.DeletionPolicy,
      UpdateReplacePolicy: expected.UpdateReplacePolicy,
    });
    // template.yaml chooses the same default key: SSEEnabled without a key id is the AWS managed key.
    expect(expected.Properties.SSESpecification['Fn::If'][2]).toEqual({ SSEEnabled: true });
  });

  it('grant() attaches the statement template.yaml’s CacheAccessPolicy grants (same actions and conditions), and sets the environment', () => {
    const { stack, cache, fn } = cacheStack();
    cache.grant(fn, { namespace: 'orders-api' });
    const synthesized = Template.fromStack(stack).toJSON();
    const [granted] = statements(synthesized).filter((statement) => statement.Sid === 'CacheItemsInNamespace');
    const [reference] = statements(sam).filter((statement) => statement.Sid === 'CacheItemsInNamespace');
    expect([...granted.Action].sort()).toEqual([...reference.Action].sort());
    expect([...CACHE_ITEM_ACTIONS].sort()).toEqual([...reference.Action].sort());
    // The template's condition, with its namespace parameter given: '${CacheNamespace}:*'.
    const condition = JSON.parse(JSON.stringify(reference.Condition).replace(/\{"Fn::Sub":"\$\{CacheNamespace\}:\*"\}/, '"orders-api:*"'));
    expect(granted.Condition).toEqual(condition);
    expect(granted).toMatchObject({ Effect: 'Allow', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^CacheTable/), 'Arn'] } });
    // Nothing else on the table: no Scan, Query or table-level action.
    expect(statements(synthesized).flatMap((statement) => [statement.Action].flat()).filter((action: string) => action.startsWith('dynamodb:'))).toEqual(granted.Action);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { [TABLE_ENV]: { Ref: Match.stringLikeRegexp('^CacheTable') }, [NAMESPACE_ENV]: 'orders-api' } },
    });
  });

  it('attachTo() adds the layer built from the package’s own layer content (dist/layer.zip): nodejs22.x and nodejs24.x, both architectures, retained', () => {
    const { app, stack, cache, fn } = cacheStack();
    cache.attachTo(fn);
    const template = Template.fromStack(stack);
    template.hasResource('AWS::Lambda::LayerVersion', {
      Properties: Match.objectLike({ CompatibleRuntimes: ['nodejs22.x', 'nodejs24.x'], CompatibleArchitectures: ['x86_64', 'arm64'], LicenseInfo: 'MIT' }),
      DeletionPolicy: 'Retain',
    });
    const layerId = Object.keys(template.findResources('AWS::Lambda::LayerVersion'))[0]!;
    template.hasResourceProperties('AWS::Lambda::Function', { Layers: [{ Ref: layerId }] });
    // The asset the cloud assembly stages for it is exactly the zip the build wrote.
    const key: string = template.findResources('AWS::Lambda::LayerVersion')[layerId]!.Properties.Content.S3Key;
    const staged = readFileSync(join(app.synth().directory, `asset.${key}`));
    expect(staged.equals(readFileSync(join(root, 'dist/layer.zip')))).toBe(true);
    expect(LAYER_EXTERNAL_MODULES).toEqual(['@aws-sdk/*', 'dynamo-cache', '@middy/core']);
  });

  it('uses an existing table instead of creating one, and takes PITR and a customer managed key for a created one', () => {
    const existing = cacheStack({ table: dynamodb.Table.fromTableName(new Stack(new App(), 'Other'), 'Seed', 'app-cache-prod'), layer: false });
    existing.cache.grant(existing.fn, { namespace: 'api' });
    const template = Template.fromStack(existing.stack);
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    template.resourceCountIs('AWS::Lambda::LayerVersion', 0);
    const [granted] = statements(template.toJSON()).filter((statement) => statement.Sid === 'CacheItemsInNamespace');
    expect(JSON.stringify(granted.Resource)).toContain(':table/app-cache-prod');

    const app = new App();
    const stack = new Stack(app, 'Keyed');
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    new DynamoCacheResources(stack, 'Cache', { pointInTimeRecovery: true, encryptionKey: key, tableName: 'app-cache-prod', layer: false });
    Template.fromStack(stack).hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'app-cache-prod',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
    });
  });

  it('refuses what cannot work: a bad or second namespace, settings for a table it does not create, attachTo without a layer, an incompatible runtime', () => {
    const { stack, cache, fn } = cacheStack();
    expect(() => cache.grant(fn, {} as never)).toThrow(InvalidOptionsError);
    expect(() => cache.grant(fn, { namespace: 'no spaces' })).toThrow(/namespace must be 1-128 characters/);
    cache.grant(fn, { namespace: 'a' });
    cache.grant(fn, { namespace: 'a' }); // the same again is fine
    expect(() => cache.grant(fn, { namespace: 'b' })).toThrow(/already uses namespace a/);
    expect(() => new DynamoCacheResources(stack, 'Both', { table: cache.table, pointInTimeRecovery: true })).toThrow(/pointInTimeRecovery applies to a created table/);
    const noLayer = new DynamoCacheResources(stack, 'NoLayer', { layer: false });
    expect(() => noLayer.attachTo(fn)).toThrow(/no layer/);
    const old = new lambda.Function(stack, 'Old', { runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1;') });
    expect(() => cache.attachTo(old)).toThrow(/incompatible/);
  });

  it('cdk-nag AwsSolutions: no finding left unacknowledged, and each acknowledgement says why', () => {
    const { app, stack, cache, fn } = cacheStack();
    cache.grant(fn, { namespace: 'api' });
    cache.attachTo(fn);
    // The example function's own findings are the application's to settle, not the construct's: explained here.
    Validations.of(fn).acknowledge(
      { id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', reason: 'The test function logs through the AWS managed basic execution policy, as most functions do.' },
      { id: 'AwsSolutions-L1', reason: 'The test function is pinned to nodejs22.x, the oldest runtime the layer supports, on purpose.' },
    );
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(report.violations.map((violation) => `${violation.ruleName}: ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    // The construct's own acknowledgement (no PITR on a cache table), with its reason, in both cdk-nag formats.
    const table = Template.fromStack(stack).findResources('AWS::DynamoDB::Table');
    expect(Object.values<any>(table)[0].Metadata.cdk_nag.rules_to_suppress).toEqual([{ id: 'AwsSolutions-DDB3', reason: expect.stringMatching(/rebuilt from its upstream/) }]);
  });

  it('cdk-nag is not vacuous: without the acknowledgements, it reports the findings they cover', () => {
    const { app, stack, cache, fn } = cacheStack();
    cache.grant(fn, { namespace: 'api' });
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(report.violations.map((violation) => violation.ruleName).sort()).toEqual(expect.arrayContaining(['AwsSolutions-L1']));
    expect(report.violations.map((violation) => violation.ruleName)).not.toContain('AwsSolutions-DDB3');
    // With PITR on, the construct acknowledges nothing and there is nothing to acknowledge.
    const pitr = cacheStack({ pointInTimeRecovery: true, layer: false });
    expect(new AwsSolutionsChecks(pitr.app).validateScope(pitr.stack).violations.map((violation) => violation.ruleName)).not.toContain('AwsSolutions-DDB3');
    expect(Object.values<any>(Template.fromStack(pitr.stack).findResources('AWS::DynamoDB::Table'))[0].Metadata).toBeUndefined();
  });

  it('the published build (dist/cdk.js and dist/cdk.cjs) finds the layer zip it ships, and imports neither the AWS SDK nor the library', async () => {
    const esm: typeof import('../src/cdk/dynamo-cache-resources.ts') = await import(pathToFileURL(join(root, 'dist/cdk.js')).href);
    const cjs: typeof import('../src/cdk/dynamo-cache-resources.ts') = createRequire(import.meta.url)('../dist/cdk.cjs');
    for (const build of [esm, cjs]) {
      const app = new App();
      const stack = new Stack(app, 'Published');
      new build.DynamoCacheResources(stack, 'Cache');
      const key: string = Object.values<any>(Template.fromStack(stack).findResources('AWS::Lambda::LayerVersion'))[0].Properties.Content.S3Key;
      expect(readFileSync(join(app.synth().directory, `asset.${key}`)).equals(readFileSync(join(root, 'dist/layer.zip')))).toBe(true);
    }
    for (const file of ['dist/cdk.js', 'dist/cdk.cjs']) {
      const imports = [...readFileSync(join(root, file), 'utf8').matchAll(/(?:from |require\()"([^"]+)"/g)].map((m) => m[1]);
      expect(imports.filter((name) => /^@aws-sdk|^dynamo-cache/.test(name!))).toEqual([]);
    }
  });
});
