import { createSocket, type Socket } from 'node:dgram';

/** A segment or subsegment document as the X-Ray SDK sends it to the daemon. */
export type TraceDocument = Record<string, any>;

/**
 * A stand-in for the X-Ray daemon on a random 127.0.0.1 UDP port: keeps every document the X-Ray SDK
 * sends (`{"format":"json","version":1}\n{...}`), so tests see the subsegments Lambda would forward.
 */
export class XRayDaemon {
  readonly documents: TraceDocument[] = [];
  readonly #socket: Socket;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('message', (message) => {
      const body = message.toString('utf8').split('\n')[1];
      if (body !== undefined) this.documents.push(JSON.parse(body) as TraceDocument);
    });
  }

  /** Listens on a random loopback port. */
  static async start(): Promise<XRayDaemon> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new XRayDaemon(socket);
  }

  /** `AWS_XRAY_DAEMON_ADDRESS` for this daemon. */
  get address(): string {
    return `127.0.0.1:${this.#socket.address().port}`;
  }

  /** The documents received so far, removed. */
  take(): TraceDocument[] {
    return this.documents.splice(0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
