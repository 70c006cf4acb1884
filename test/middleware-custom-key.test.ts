import { PowertoolsFunctions } from '@aws-lambda-powertools/jmespath/functions';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../src/errors.ts';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import { useDynalite } from './support/fixtures.ts';
import { setupMiddy } from './support/middy-harness.ts';

const db = useDynalite();

/** An event whose body is JSON text, as SQS records, EventBridge Pipes and direct invocations carry it. */
const orderEvent = (body: Record<string, unknown>) => ({ body: JSON.stringify(body) });

describe('JMESPath keys with Powertools functions', () => {
  it("key: 'powertools_json(body).orderId' loads, and memoizes by the order id inside the JSON body", async () => {
    const { invoke, handlerSpy } = await setupMiddy(db, async (event) => ({ priced: JSON.parse(event.body).orderId, at: Math.random() }), {
      response: { key: 'powertools_json(body).orderId' },
    });
    const first = await invoke(orderEvent({ orderId: 'o-1', requestId: 'a' }));
    const again = await invoke(orderEvent({ requestId: 'b', orderId: 'o-1' }));
    const other = await invoke(orderEvent({ orderId: 'o-2', requestId: 'c' }));
    expect(again).toEqual(first);
    expect(other.priced).toBe('o-2');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('powertools_base64 and powertools_base64_gzip decode the data they key by', async () => {
    const gzipped = (data: unknown) => ({ awslogs: { data: gzipSync(JSON.stringify(data)).toString('base64') } });
    const logs = await setupMiddy(db, async () => 'processed', { response: { key: 'powertools_json(powertools_base64_gzip(awslogs.data)).logGroup' } });
    await logs.invoke(gzipped({ logGroup: '/aws/lambda/a', logEvents: [1] }));
    await logs.invoke(gzipped({ logGroup: '/aws/lambda/a', logEvents: [2] }));
    await logs.invoke(gzipped({ logGroup: '/aws/lambda/b', logEvents: [3] }));
    expect(logs.handlerSpy).toHaveBeenCalledTimes(2);

    const encoded = (text: string) => ({ data: Buffer.from(text).toString('base64') });
    const plain = await setupMiddy(db, async () => 'processed', { response: { key: 'powertools_base64(data)' } });
    await plain.invoke(encoded('same'));
    await plain.invoke(encoded('same'));
    await plain.invoke(encoded('different'));
    expect(plain.handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('custom functions extend Powertools’ own through jmesPathFunctions', async () => {
    class ShopFunctions extends PowertoolsFunctions {
      /** `lower(text)`: a JMESPath function is a `func<Name>` method, given the arguments as an array. */
      funcLower([text]: [string]): string {
        return text.toLowerCase();
      }
    }
    const { invoke, handlerSpy } = await setupMiddy(db, async () => 'ok', {
      response: { key: 'lower(powertools_json(body).sku)', jmesPathFunctions: new ShopFunctions() },
    });
    await invoke(orderEvent({ sku: 'ABC-1' }));
    await invoke(orderEvent({ sku: 'abc-1' }));
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });

  it('an unknown function or bad syntax fails at load; a key the empty event cannot feed does not', () => {
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: 'powertools_jsn(body)' } })).toThrow(/not a valid JMESPath expression.*Unknown function/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: 'lower(body)' } })).toThrow(InvalidOptionsError); // custom functions must be given
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: 'body.[' } })).toThrow(InvalidOptionsError);
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: 'powertools_base64_gzip(data)' } })).not.toThrow();
  });

  it('jmesPathFunctions must be a Functions instance, for a JMESPath key', () => {
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: 'a', jmesPathFunctions: {} as never } })).toThrow(/jmesPathFunctions/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { jmesPathFunctions: new PowertoolsFunctions() } })).toThrow(/jmesPathFunctions/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: () => 'k', jmesPathFunctions: new PowertoolsFunctions() } })).toThrow(/jmesPathFunctions/);
  });

  it('an event the key cannot read (a body that is not JSON, no body at all) is not memoized', async () => {
    const { invoke, handlerSpy } = await setupMiddy(db, async () => 'ok', { response: { key: 'powertools_json(body).orderId' } });
    for (const event of [{ body: 'not json' }, { body: 'not json' }, {}, {}]) await invoke(event);
    expect(handlerSpy).toHaveBeenCalledTimes(4);
  });
});
