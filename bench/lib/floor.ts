import { crtListLine, type DeployEntry } from '../../src/haproxy/deploy/entry.js';
import { parseRuntimeAddress } from '../../src/haproxy/runtime/address.js';
import { OK } from '../../src/haproxy/runtime/reply.js';
import { RuntimeSession } from '../../src/haproxy/runtime/session.js';

/**
 * HAProxy's own floor for adding a certificate: the four runtime commands, each a request/response
 * on ONE prompt session, with nothing around them but a check that the reply is a success (a
 * floor that ignored failures would not be a floor). Not safe for concurrent use (one session).
 */
export class RawPusher {
  private constructor(
    private readonly session: RuntimeSession,
    private readonly crtList: string,
  ) {}

  static async open(runtime: string, crtList: string): Promise<RawPusher> {
    return new RawPusher(await RuntimeSession.open(parseRuntimeAddress(runtime)), crtList);
  }

  /** `new ssl cert` → `set ssl cert <<` PEM → `commit ssl cert` → `add ssl crt-list <<` line. */
  async add(e: DeployEntry): Promise<void> {
    const s = this.session;
    const p = e.pemPath;
    expect(await s.execute(`new ssl cert ${p}`), OK.newCert, p);
    expect(await s.execute(`set ssl cert ${p}`, e.pem), OK.setCert, p);
    expect(await s.execute(`commit ssl cert ${p}`), OK.commit, p);
    expect(await s.execute(`add ssl crt-list ${this.crtList}`, crtListLine(e)), OK.addCrtList, p);
  }

  close(): void {
    this.session.destroy();
  }
}

function expect(reply: string, ok: RegExp, path: string): void {
  if (!ok.test(reply)) throw new Error(`raw push of ${path}: unexpected reply ${JSON.stringify(reply)}`);
}
