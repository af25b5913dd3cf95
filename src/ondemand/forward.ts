import { Agent, request } from 'node:http';

/** The header a forwarded call carries: the replica it reaches answers it itself, never forwards it again. */
export const FORWARDED_HEADER = 'x-certd-forwarded';

/** An owner that does not take the connection within this is treated as gone (the local path answers). */
const CONNECT_TIMEOUT_MS = 250;

/** What the owner answered (OwnersOutcome's shape, its statuses but forge's `approved`). */
export interface OwnersOutcome {
  status: 'known' | 'issued' | 'pending' | 'refused' | 'limited' | 'failed';
  reason?: string;
  ms?: number;
}

/** The statuses the owner's answer is passed on with; anything else (5xx, a reset) falls back to the local path. */
const PASSED_ON: Record<number, OwnersOutcome['status'][]> = { 200: ['known', 'issued'], 202: ['pending'], 403: ['refused'], 429: ['limited'], 502: ['failed'] };

export interface OwnerForwardOptions {
  /** The API of the replica that writes to every instance, when it is another one (else undefined: answered here). */
  owner: () => string | undefined;
  /** The on-demand token (every replica has the same). */
  token: string;
}

/**
 * Active-active, a replica that owns no instance: the handshake's call is handed to the replica
 * that owns them, which issues and pushes in one process and answers once HAProxy serves the name
 * (no store round trip, no notification, no announcement back: bench:ha's non-owner ÷ owner).
 * Exactly-once stays with the issue lock + recheck in the store: if the owner is gone
 * (refused, no connect within CONNECT_TIMEOUT_MS, a reset or a 5xx), the caller issues locally and
 * the lock finds what the owner may have issued meanwhile.
 */
export class OwnerForward {
  /** Kept-alive connections: a forwarded call costs no connect. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly o: OwnerForwardOptions) {}

  /** The owner's outcome, or undefined when there is no other owner or it did not answer (answer here). */
  ask(sni: string, client: string, maxWaitMs: number): Promise<OwnersOutcome | undefined> {
    const owner = this.o.owner();
    if (!owner) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let done = false;
      const finish = (outcome: OwnersOutcome | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(connectTimer);
        clearTimeout(answerTimer);
        resolve(outcome);
      };
      const req = request(`${owner}/ondemand`, {
        method: 'POST',
        agent: this.agent,
        headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'text/plain', 'x-certd-client': client, [FORWARDED_HEADER]: '1' },
      });
      const connectTimer = setTimeout(() => (req.destroy(), finish(undefined)), CONNECT_TIMEOUT_MS);
      // Past maxWait the owner goes on issuing in the background: the handshake goes on, as with a late local issuance.
      const answerTimer = setTimeout(() => (req.destroy(), finish({ status: 'pending', reason: 'issuing in the background (owner replica)' })), maxWaitMs);
      req.on('socket', (s) => (s.connecting ? s.once('connect', () => clearTimeout(connectTimer)) : clearTimeout(connectTimer)));
      req.on('error', () => finish(undefined));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => finish(undefined));
        res.on('end', () => {
          try {
            const outcome = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OwnersOutcome;
            finish(PASSED_ON[res.statusCode ?? 0]?.includes(outcome.status) ? outcome : undefined);
          } catch {
            finish(undefined);
          }
        });
      });
      req.end(sni);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
