/**
 * Errors `dynamo-cache` throws to its caller.
 *
 * Only bad input is thrown: a cache problem (DynamoDB throttled, down, slow, or an unreadable item) never
 * reaches the caller, it becomes a miss (see `DynamoCache`). Input errors extend `TypeError`, so code that
 * already tells programming errors apart with `instanceof TypeError` keeps working.
 */

/** A cache key that is not a non-empty string. */
export class InvalidKeyError extends TypeError {
  override name = 'InvalidKeyError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A value the cache cannot store exactly (undefined, a function, a Date, NaN, a cycle, ...). */
export class InvalidValueError extends TypeError {
  override name = 'InvalidValueError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Options that are missing, of the wrong type or out of range. */
export class InvalidOptionsError extends TypeError {
  override name = 'InvalidOptionsError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A `getOrSet` waited `lease.waitMs` for another caller's refresh and `lease.onWaitTimeout` is `'throw'`.
 * (With the default `'fetch'` the caller fetches itself instead and this is never thrown.)
 */
export class LeaseWaitTimeoutError extends Error {
  override name = 'LeaseWaitTimeoutError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
