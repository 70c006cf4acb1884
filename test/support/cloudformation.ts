import { loadAwsServiceSpec } from '@aws-cdk/aws-service-spec';
import type { PropertyType, Resource, SpecDatabase } from '@aws-cdk/service-spec-types';
import { parse, type ScalarTag, type CollectionTag } from 'yaml';

/** A template as plain data, with short-form tags (`!Sub`) turned into their long form (`Fn::Sub`). */
export type Template = Record<string, any>;

const SHORT_FORMS = ['Ref', 'Condition', 'Base64', 'Cidr', 'FindInMap', 'GetAtt', 'GetAZs', 'ImportValue', 'Join', 'Select', 'Split', 'Sub', 'Transform', 'And', 'Equals', 'If', 'Not', 'Or'];

function longForm(name: string): string {
  return name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
}

const tags: Array<ScalarTag | CollectionTag> = SHORT_FORMS.flatMap((name) => [
  // `!GetAtt A.B` is the scalar form of `Fn::GetAtt: [A, B]`.
  { tag: `!${name}`, resolve: (value: string) => ({ [longForm(name)]: name === 'GetAtt' ? value.split('.', 2) : value }) } as ScalarTag,
  { tag: `!${name}`, collection: 'seq', resolve: (seq: any) => ({ [longForm(name)]: seq.toJSON() }) } as CollectionTag,
  { tag: `!${name}`, collection: 'map', resolve: (map: any) => ({ [longForm(name)]: map.toJSON() }) } as CollectionTag,
]);

/** Parses a CloudFormation/SAM YAML template, CloudFormation tags included. */
export function parseTemplate(text: string): Template {
  return parse(text, { customTags: tags }) as Template;
}

/** SAM resources and the CloudFormation resource each passes its extra properties through to. */
const SAM_TARGETS: Record<string, string> = {
  'AWS::Serverless::Function': 'AWS::Lambda::Function',
  'AWS::Serverless::LayerVersion': 'AWS::Lambda::LayerVersion',
  'AWS::Serverless::SimpleTable': 'AWS::DynamoDB::Table',
};

/** Logical IDs SAM creates itself, which a template may reference. */
const SAM_IMPLICIT = ['ServerlessHttpApi', 'ServerlessRestApi'];
const PSEUDO = ['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix'];
const TOP_LEVEL = ['AWSTemplateFormatVersion', 'Description', 'Metadata', 'Parameters', 'Rules', 'Mappings', 'Conditions', 'Transform', 'Resources', 'Outputs', 'Globals'];
const RESOURCE_ATTRIBUTES = ['Type', 'Properties', 'Condition', 'DependsOn', 'Metadata', 'DeletionPolicy', 'UpdateReplacePolicy', 'CreationPolicy', 'UpdatePolicy'];
const OUTPUT_ATTRIBUTES = ['Description', 'Value', 'Export', 'Condition'];
const DELETION_POLICIES = ['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot'];
const UPDATE_REPLACE_POLICIES = ['Delete', 'Retain', 'Snapshot'];

let spec: Promise<SpecDatabase> | undefined;

/**
 * Checks a template against the AWS resource specification (`@aws-cdk/aws-service-spec`, the database AWS
 * CDK generates its CloudFormation classes from, for CloudFormation and SAM resources): resource types,
 * property names, required properties and value types, recursively, plus that every `Ref`, `Fn::GetAtt`,
 * `Fn::Sub` variable and `Condition` names something that exists, that a resource created only under a
 * condition is referenced only where that condition holds, and the resource and output attributes
 * (`DeletionPolicy`, `UpdateReplacePolicy`, `Export`...). Returns the problems found.
 */
export async function validateTemplate(template: Template): Promise<string[]> {
  const db = await (spec ??= loadAwsServiceSpec());
  const problems: string[] = [];
  for (const key of Object.keys(template)) if (!TOP_LEVEL.includes(key)) problems.push(`unknown top-level section ${key}`);
  const resources: Record<string, any> = template.Resources ?? {};
  const names = new Set([...Object.keys(template.Parameters ?? {}), ...Object.keys(resources), ...PSEUDO, ...(template.Transform ? SAM_IMPLICIT : [])]);
  const conditions = new Set(Object.keys(template.Conditions ?? {}));
  const check = new Checker(db, names, conditions, problems);
  for (const [id, resource] of Object.entries(resources)) {
    const where = `Resources.${id}`;
    const [definition] = db.lookup('resource', 'cloudFormationType', 'equals', resource.Type);
    if (definition === undefined) {
      problems.push(`${where}: unknown resource type ${resource.Type}`);
      continue;
    }
    if (resource.Condition !== undefined && !conditions.has(resource.Condition)) problems.push(`${where}: unknown condition ${resource.Condition}`);
    for (const key of Object.keys(resource)) if (!RESOURCE_ATTRIBUTES.includes(key)) problems.push(`${where}.${key}: not a resource attribute`);
    if (resource.DeletionPolicy !== undefined && !DELETION_POLICIES.includes(resource.DeletionPolicy)) problems.push(`${where}.DeletionPolicy: ${resource.DeletionPolicy} is not one of ${DELETION_POLICIES.join(', ')}`);
    if (resource.UpdateReplacePolicy !== undefined && !UPDATE_REPLACE_POLICIES.includes(resource.UpdateReplacePolicy)) problems.push(`${where}.UpdateReplacePolicy: ${resource.UpdateReplacePolicy} is not one of ${UPDATE_REPLACE_POLICIES.join(', ')}`);
    check.properties(where, resource.Type, definition, resource.Properties ?? {});
  }
  for (const [id, output] of Object.entries<any>(template.Outputs ?? {})) {
    const where = `Outputs.${id}`;
    for (const key of Object.keys(output)) if (!OUTPUT_ATTRIBUTES.includes(key)) problems.push(`${where}.${key}: not an output attribute`);
    if (output.Value === undefined) problems.push(`${where}: Value is missing`);
    if (output.Export !== undefined && output.Export.Name === undefined) problems.push(`${where}.Export: Name is missing`);
    if (output.Condition !== undefined && !conditions.has(output.Condition)) problems.push(`${where}: unknown condition ${output.Condition}`);
    check.references(where, [output.Value, output.Export ?? {}]);
  }
  for (const [id, condition] of Object.entries<any>(template.Conditions ?? {})) check.references(`Conditions.${id}`, condition);
  const conditional = new Map(Object.entries(resources).flatMap(([id, resource]) => (resource.Condition === undefined ? [] : [[id, resource.Condition as string]])));
  const guards = (own: string | undefined) => new Set(own === undefined ? [] : [own]);
  for (const [id, resource] of Object.entries(resources)) unguardedReferences(`Resources.${id}`, resource.Properties ?? {}, guards(resource.Condition), conditional, problems);
  for (const [id, output] of Object.entries<any>(template.Outputs ?? {})) unguardedReferences(`Outputs.${id}`, [output.Value, output.Export ?? {}], guards(output.Condition), conditional, problems);
  return problems;
}

/**
 * Finds references to a resource that exists only under a condition, made where that condition is not known
 * to hold (outside the true branch of an `Fn::If` on it, in a resource or output without it): when the
 * condition is false, CloudFormation rejects the template.
 */
function unguardedReferences(where: string, value: unknown, holds: ReadonlySet<string>, conditional: ReadonlyMap<string, string>, problems: string[]): void {
  const check = (name: string, how: string) => {
    const condition = conditional.get(name);
    if (condition !== undefined && !holds.has(condition)) problems.push(`${where}: ${how} ${name} outside condition ${condition}`);
  };
  if (Array.isArray(value)) return value.forEach((element) => unguardedReferences(where, element, holds, conditional, problems));
  if (typeof value !== 'object' || value === null) return;
  for (const [key, inner] of Object.entries(value)) {
    if (key === 'Fn::If') {
      const [condition, whenTrue, whenFalse] = inner as [string, unknown, unknown];
      unguardedReferences(where, whenTrue, new Set([...holds, condition]), conditional, problems);
      unguardedReferences(where, whenFalse, holds, conditional, problems);
    } else if (key === 'Ref' && typeof inner === 'string') check(inner, 'Ref to');
    else if (key === 'Fn::GetAtt') check(String((inner as string[])[0]), 'GetAtt of');
    else if (key === 'Fn::Sub') {
      const { names, variables } = subReferences(inner);
      for (const name of names) check(name.split('.')[0]!, 'Sub of');
      unguardedReferences(where, variables, holds, conditional, problems);
    } else unguardedReferences(where, inner, holds, conditional, problems);
  }
}

/** What an `Fn::Sub` references: its `${Name}` and `${Name.Attribute}` placeholders that its own variable map does not define, and that map. */
function subReferences(argument: unknown): { names: string[]; variables: Record<string, unknown> } {
  const [text, variables = {}] = Array.isArray(argument) ? (argument as [string, Record<string, unknown>]) : [argument as string];
  const names = [...String(text).matchAll(/\$\{([^!}][^}]*)\}/g)].map(([, name]) => name!).filter((name) => !(name.split('.')[0]! in variables));
  return { names, variables };
}

class Checker {
  readonly db: SpecDatabase;
  readonly names: Set<string>;
  readonly conditions: Set<string>;
  readonly problems: string[];

  constructor(db: SpecDatabase, names: Set<string>, conditions: Set<string>, problems: string[]) {
    this.db = db;
    this.names = names;
    this.conditions = conditions;
    this.problems = problems;
  }

  properties(where: string, type: string, definition: Resource, properties: Record<string, unknown>): void {
    const target = SAM_TARGETS[type] === undefined ? undefined : this.db.lookup('resource', 'cloudFormationType', 'equals', SAM_TARGETS[type]!)[0];
    for (const [name, value] of Object.entries(properties)) {
      const property = definition.properties[name] ?? target?.properties[name];
      if (property === undefined) this.problems.push(`${where}.${name}: not a property of ${type}`);
      else this.value(`${where}.${name}`, property.type, value);
    }
    for (const [name, property] of Object.entries(definition.properties)) {
      if (property.required && !(name in properties)) this.problems.push(`${where}: required property ${name} is missing`);
    }
  }

  /** Checks `value` against `type`; an intrinsic function stands for any value. */
  value(where: string, type: PropertyType, value: unknown): void {
    if (this.intrinsic(where, type, value)) return;
    switch (type.type) {
      case 'json':
        return;
      case 'string':
      case 'date-time':
        if (typeof value !== 'string' && typeof value !== 'number') this.problems.push(`${where}: expected a string`);
        return;
      case 'number':
      case 'integer':
        if (typeof value !== 'number' && !(typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))) this.problems.push(`${where}: expected a number`);
        return;
      case 'boolean':
        if (typeof value !== 'boolean' && value !== 'true' && value !== 'false') this.problems.push(`${where}: expected a boolean`);
        return;
      case 'array':
        if (!Array.isArray(value)) return void this.problems.push(`${where}: expected a list`);
        value.forEach((element, i) => this.value(`${where}[${i}]`, type.element, element));
        return;
      case 'map':
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return void this.problems.push(`${where}: expected a map`);
        for (const [key, element] of Object.entries(value)) this.value(`${where}.${key}`, type.element, element);
        return;
      case 'tag':
        return;
      case 'ref': {
        const definition = this.db.get('typeDefinition', type.reference);
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return void this.problems.push(`${where}: expected a ${definition.name}`);
        for (const [name, inner] of Object.entries(value)) {
          const property = definition.properties[name];
          if (property === undefined) this.problems.push(`${where}.${name}: not a property of ${definition.name}`);
          else this.value(`${where}.${name}`, property.type, inner);
        }
        for (const [name, property] of Object.entries(definition.properties)) {
          if (property.required && !(name in value)) this.problems.push(`${where}: required property ${name} is missing`);
        }
        return;
      }
      case 'union': {
        // Valid when some member accepts it: try each on a scratch list of problems.
        const attempts = type.types.map((member) => {
          const scratch = new Checker(this.db, this.names, this.conditions, []);
          scratch.value(where, member, value);
          return scratch.problems;
        });
        if (!attempts.some((found) => found.length === 0)) this.problems.push(...attempts.sort((a, b) => a.length - b.length)[0]!);
        return;
      }
      default:
        return;
    }
  }

  /** Whether `value` is an intrinsic function (checking what it references, and both branches of Fn::If). */
  intrinsic(where: string, type: PropertyType, value: unknown): boolean {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const keys = Object.keys(value);
    if (keys.length !== 1 || !(keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) return false;
    const [name] = keys as [string];
    const argument = (value as Record<string, unknown>)[name];
    if (name === 'Fn::If') {
      const [condition, whenTrue, whenFalse] = argument as [string, unknown, unknown];
      if (!this.conditions.has(condition)) this.problems.push(`${where}: unknown condition ${condition}`);
      for (const branch of [whenTrue, whenFalse]) {
        if (!(typeof branch === 'object' && branch !== null && (branch as { Ref?: string }).Ref === 'AWS::NoValue')) this.value(where, type, branch);
      }
      return true;
    }
    this.references(where, value);
    return true;
  }

  /** Checks every `Ref`, `Fn::GetAtt`, `Fn::Sub` variable and `Condition` inside `value`. */
  references(where: string, value: unknown): void {
    if (Array.isArray(value)) return value.forEach((element) => this.references(where, element));
    if (typeof value !== 'object' || value === null) return;
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'Ref' && typeof inner === 'string' && !this.names.has(inner)) this.problems.push(`${where}: Ref to unknown ${inner}`);
      else if (key === 'Fn::GetAtt' && !this.names.has(String((inner as string[])[0]))) this.problems.push(`${where}: GetAtt of unknown ${(inner as string[])[0]}`);
      else if (key === 'Condition' && typeof inner === 'string' && !this.conditions.has(inner)) this.problems.push(`${where}: unknown condition ${inner}`);
      else if (key === 'Fn::Sub') {
        const { names, variables } = subReferences(inner);
        for (const name of names) if (!this.names.has(name.split('.')[0]!)) this.problems.push(`${where}: Sub of unknown \${${name}}`);
        this.references(where, variables);
      } else this.references(where, inner);
    }
  }
}
