import type { IncomingMessage, ServerResponse } from 'node:http';
import { LocalUpstream, signingKeyIdOf } from './local-upstream.ts';

/**
 * A local STS endpoint on 127.0.0.1 for the real STS client (the query protocol: a form-encoded `Action`,
 * an XML answer), answering `GetCallerIdentity` as STS does: with the identity of the credentials that signed
 * the request (the access key id in its SigV4 `Credential`), from `identities`. Counts the calls.
 */
export class StsServer extends LocalUpstream<never> {
  /** `GetCallerIdentity` calls received. */
  calls = 0;
  readonly #identities: Readonly<Record<string, string>>;

  private constructor(identities: Readonly<Record<string, string>>) {
    super({});
    this.#identities = identities;
  }

  /** Starts a server on a random 127.0.0.1 port that knows the ARN of each access key id in `identities`. */
  static start(identities: Readonly<Record<string, string>>): Promise<StsServer> {
    return new StsServer(identities).listen();
  }

  /** The endpoint, to give the STS client. */
  get endpoint(): string {
    return this.origin;
  }

  protected answer(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const action = new URLSearchParams(body.toString()).get('Action');
    const accessKeyId = signingKeyIdOf(req);
    const arn = this.#identities[accessKeyId];
    const answer = (status: number, xml: string) => res.writeHead(status, { 'content-type': 'text/xml' }).end(xml);
    if (action !== 'GetCallerIdentity' || arn === undefined) {
      answer(403, '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>req</RequestId></ErrorResponse>');
      return;
    }
    this.calls += 1;
    answer(
      200,
      `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${arn}</Arn><UserId>AROA:${accessKeyId}</UserId><Account>${arn.split(':')[4]}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>req-${this.calls}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
    );
  }
}
