import type { CallBudget } from '../resilience/dynamo-guard.ts';

interface Flight<T> {
  readonly promise: Promise<T>;
  /** Aborts the flight's own work once every caller waiting on it has aborted; absent when one never can. */
  readonly controller: AbortController | undefined;
  /** Callers still waiting that can abort; a caller without a signal pins the flight for good. */
  waiting: number;
  pinned: boolean;
}

/**
 * In-process single flight: concurrent calls for one key share one piece of work (one read, one fetch).
 *
 * The work runs under the first caller's deadline. Its signal is the flight's own: it aborts only when every
 * caller waiting on the flight has aborted, so one caller giving up never cancels the answer the others
 * wait for. Each caller still leaves at once when its own signal aborts.
 */
export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** Whether `key` has work in flight. */
  has(key: string): boolean {
    return this.#flights.has(key);
  }

  /** Joins the work in flight for `key`, or starts it with `work`; resolves its result, or rejects with the caller's abort reason. */
  run(key: string, call: CallBudget, work: (call: CallBudget) => Promise<T>): Promise<T> {
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      const controller = call.signal === undefined ? undefined : new AbortController();
      const own: CallBudget = controller === undefined ? call : { signal: controller.signal, untilMs: call.untilMs };
      const started: Flight<T> = { promise: undefined as never, controller, waiting: 0, pinned: false };
      (started as { promise: Promise<T> }).promise = work(own).finally(() => this.#flights.delete(key));
      flight = started;
      this.#flights.set(key, flight);
    }
    return this.#wait(flight, call.signal);
  }

  #wait(flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal === undefined) {
      flight.pinned = true;
      return flight.promise;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    flight.waiting++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        reject(signal.reason);
        if (--flight.waiting === 0 && !flight.pinned) flight.controller?.abort(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          flight.waiting--;
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          flight.waiting--;
          reject(error);
        },
      );
    });
  }
}
