import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { Readable } from 'node:stream';

type Item = Record<string, AttributeValue>;

/**
 * An SDK request handler that answers DynamoDB JSON requests from memory, with no network and no server:
 * what is left when a request is timed is the client's own CPU (the SDK's serialization, signing and
 * parsing, plus whatever a library adds on top). Items are kept in their wire form (B values as base64).
 */
export class StubTransport {
  readonly #items = new Map<string, Item>();
  readonly #keyName: string;

  constructor(keyName = 'id') {
    this.#keyName = keyName;
  }

  /** The handler to pass as `requestHandler` in a `DynamoDBClient` configuration. */
  get requestHandler(): object {
    return {
      handle: async (request: { headers: Record<string, string>; body: string | Uint8Array }) => {
        const operation = request.headers['x-amz-target']?.split('.')[1] ?? '';
        const input = JSON.parse(typeof request.body === 'string' ? request.body : Buffer.from(request.body).toString('utf8'));
        const payload = Buffer.from(JSON.stringify(this.#answer(operation, input)));
        return {
          response: {
            statusCode: 200,
            reason: 'OK',
            headers: { 'content-type': 'application/x-amz-json-1.0', 'content-length': String(payload.byteLength) },
            body: Readable.from([payload]),
          },
        };
      },
      updateHttpClientConfig() {},
      httpHandlerConfigs: () => ({}),
    };
  }

  #answer(operation: string, input: { Key?: Item; Item?: Item; RequestItems?: Record<string, { Keys: Item[] }> }): unknown {
    const keyOf = (item: Item | undefined) => item?.[this.#keyName]?.S ?? '';
    switch (operation) {
      case 'GetItem': {
        const item = this.#items.get(keyOf(input.Key));
        return item === undefined ? {} : { Item: item };
      }
      case 'PutItem':
        this.#items.set(keyOf(input.Item), input.Item!);
        return {};
      case 'BatchGetItem': {
        const responses: Record<string, Item[]> = {};
        for (const [table, { Keys }] of Object.entries(input.RequestItems ?? {})) {
          responses[table] = Keys.map((key) => this.#items.get(keyOf(key))).filter((item): item is Item => item !== undefined);
        }
        return { Responses: responses, UnprocessedKeys: {} };
      }
      default:
        // UpdateItem, DeleteItem...: accepted and forgotten; the scenarios that use this transport only read.
        return {};
    }
  }
}
