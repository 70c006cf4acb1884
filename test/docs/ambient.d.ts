// Declarations every code block of README.md and docs/*.md may use without defining (see test/docs.test.ts):
// the application code the examples call. A block that defines one of these names itself shadows it.

/** A user record, as the examples' upstream returns it. */
interface User {
  id: string;
  name: string;
}

/** The examples' slow or rate-limited upstream call. */
declare function loadUser(id: string): Promise<User>;

/** Fetches an access token from a token endpoint (OAuth 2.0 client credentials in the examples). */
declare function fetchToken(): Promise<string>;

/** A cache as the README's quick start creates it, for snippets that show calls on it. */
declare const cache: import('dynamo-cache').DynamoCache;
