import { Agent, request } from 'node:http';
import type { Logger } from '../core/log.js';

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

/** Where a call goes: the API of the other replica that writes to every instance, or why there is none. */
export type HandOff = { api: string } | { none: string };

export interface OwnerForwardOptions {
  /** Undefined while this replica writes to an instance itself (answered here, nothing to say). */
  owner: () => HandOff | undefined;
  /** The on-demand token (every replica has the same). */
  token: string;
  /** Says why a call was answered here instead (see fellBack). */
  log?: Logger;
}

/** A dead owner turns every handshake's call into a fallback: the same cause is said once per this, with the count. */
const FALLBACK_LOG_EVERY_MS = 10_000;

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

  private fallbacks: { count: number; loggedAt: number; why?: string } = { count: 0, loggedAt: 0 };

  constructor(private readonly o: OwnerForwardOptions) {}

  /** The owner's outcome, or undefined when there is no other owner or it did not answer (answer here). */
  ask(sni: string, client: string, maxWaitMs: number): Promise<OwnersOutcome | undefined> {
    const to = this.o.owner();
    if (!to) return Promise.resolve(undefined);
    if ('none' in to) return Promise.resolve(this.fellBack(to.none));
    const owner = to.api;
    return new Promise((resolve) => {
      let done = false;
      const finish = (outcome: OwnersOutcome | undefined, why?: string) => {
        if (done) return;
        done = true;
        clearTimeout(connectTimer);
        clearTimeout(answerTimer);
        resolve(outcome ?? this.fellBack(`the owner replica ${owner} ${why ?? 'did not answer'}`));
      };
      const req = request(`${owner}/ondemand`, {
        method: 'POST',
        agent: this.agent,
        headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'text/plain', 'x-certd-client': client, [FORWARDED_HEADER]: '1' },
      });
      const connectTimer = setTimeout(() => (req.destroy(), finish(undefined, `took no connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      // Past maxWait the owner goes on issuing in the background: the handshake goes on, as with a late local issuance.
      const answerTimer = setTimeout(() => (req.destroy(), finish({ status: 'pending', reason: 'issuing in the background (owner replica)' })), maxWaitMs);
      req.on('socket', (s) => (s.connecting ? s.once('connect', () => clearTimeout(connectTimer)) : clearTimeout(connectTimer)));
      req.on('error', (err) => finish(undefined, `failed: ${err.message}`));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish(undefined, `failed mid-answer: ${err.message}`));
        res.on('end', () => {
          const answer = `answered HTTP ${res.statusCode}`;
          try {
            const outcome = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OwnersOutcome;
            finish(PASSED_ON[res.statusCode ?? 0]?.includes(outcome.status) ? outcome : undefined, `${answer} ${outcome.status}`);
          } catch {
            finish(undefined, `${answer} that is not JSON`);
          }
        });
      });
      req.end(sni);
    });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Answered here: says why (a new cause at once, the same one again at most every FALLBACK_LOG_EVERY_MS), with how many calls fell back. */
  private fellBack(why: string): undefined {
    const f = this.fallbacks;
    f.count++;
    const now = Date.now();
    if (this.o.log && (why !== f.why || now - f.loggedAt >= FALLBACK_LOG_EVERY_MS)) {
      this.o.log.info({ calls: f.count }, `on-demand answered by this replica: ${why}`);
      this.fallbacks = { count: 0, loggedAt: now, why };
    }
    return undefined;
  }
}
