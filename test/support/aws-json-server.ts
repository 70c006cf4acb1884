import type { IncomingMessage, ServerResponse } from 'node:http';
import { LocalUpstream } from './local-upstream.ts';

/** An error a handler throws to answer the service's error response (`__type` and `message`). */
export class ServiceFault extends Error {
  readonly type: string;
  readonly status: number;

  constructor(type: string, message: string, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

/** Answers one operation: its output, or a thrown {@link ServiceFault}. */
export type OperationHandler = (input: Record<string, unknown>) => object;

/**
 * A local endpoint on 127.0.0.1 for AWS services that speak the JSON 1.1 protocol (Cognito Identity Provider,
 * SSM, Secrets Manager...), for their real SDK clients: `X-Amz-Target: <Service>.<Operation>` selects a
 * handler; errors are the protocol's `{ "__type", "message" }`. Counts calls per operation; tests can force
 * the next answers to be errors (`ThrottlingException`, `TooManyRequestsException`...).
 */
export class AwsJsonServer extends LocalUpstream<ServiceFault> {
  /** Calls received, by operation, forced errors included. */
  readonly calls = new Map<string, number>();
  readonly #handlers: Record<string, OperationHandler>;

  private constructor(handlers: Record<string, OperationHandler>) {
    super({});
    this.#handlers = handlers;
  }

  /** Starts a server on a random 127.0.0.1 port answering with `handlers`, by operation name. */
  static start(handlers: Record<string, OperationHandler>): Promise<AwsJsonServer> {
    return new AwsJsonServer(handlers).listen();
  }

  /** The endpoint, to give the SDK client. */
  get endpoint(): string {
    return this.origin;
  }

  /** Calls of `operation`, or of all operations. */
  count(operation?: string): number {
    if (operation !== undefined) return this.calls.get(operation) ?? 0;
    return [...this.calls.values()].reduce((sum, n) => sum + n, 0);
  }

  /** Answers the next `count` calls with `type` (a 400 by default, as AWS throttling errors are). */
  failNext(count: number, type: string, status = 400): void {
    this.injectNext(count, new ServiceFault(type, `Injected ${type}`, status));
  }

  /** Forgets the counts and forced errors. */
  reset(): void {
    this.calls.clear();
    this.resetFaults();
  }

  protected answer(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    let status = 200;
    let output: object;
    try {
      const fault = this.takeFault();
      if (fault !== undefined && fault !== 'throttled') throw fault;
      const handler = this.#handlers[operation];
      if (handler === undefined) throw new ServiceFault('UnknownOperationException', `no handler for ${operation}`);
      output = handler(JSON.parse(body.toString() || '{}'));
    } catch (error) {
      const fault = error instanceof ServiceFault ? error : new ServiceFault('InternalErrorException', (error as Error).message, 500);
      status = fault.status;
      output = { __type: fault.type, message: fault.message };
    }
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${this.count()}` }).end(JSON.stringify(output));
  }
}
