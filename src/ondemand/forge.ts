import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { MAX_TIMER_MS } from '../config/duration.js';
import { ensureDir, fsErrorCode, writeFileAtomic } from '../core/atomic-write.js';
import { exportPrivateKeyPem, generateKeyPair } from '../crypto/keys.js';
import type { ReloadOutcome } from '../haproxy/deploy/deployer.js';
import { nameConstraintsExtensionDer } from '../crypto/name-constraints.js';
import { buildCertificate, selfSignedIssuer } from '../crypto/x509.js';
import { certDirLayout } from '../haproxy/cert-dir.js';
import type { LocalCa } from '../issuers/local-ca/index.js';
import { forgeConstraints, type ForgeConstraints } from './forge-constraints.js';

const DAY_MS = 86_400_000;
/**
 * The intermediate lives a week and is replaced at half-life: a stolen key is useless within days,
 * and the old one still has 3.5 days when its worker is retired — far more than any connection
 * it forged for stays open (forged certificates live only in that worker's memory).
 */
export const FORGE_VALIDITY_MS = 7 * DAY_MS;

export interface ForgeOptions {
  ca: LocalCa;
  issuerId: string;
  allow: readonly string[];
  deny: readonly string[];
  certDir: string;
  /**
   * `ca-sign-file` is read at start only, so a new intermediate needs a reload of every HAProxy
   * (Deployer.reloadFromFiles); none when offline (the files alone).
   */
  reload?: (reason: string) => Promise<ReloadOutcome[]>;
  log: Logger;
  validityMs?: number;
}

/**
 * Keeps HAProxy's forge files current: the intermediate (cert + key, HAProxy's `ca-sign-file`)
 * and the forge bind's default certificate, whose key every forged certificate carries. Files
 * still valid past half their life, signed by this root and for these constraints are kept (a
 * daemon restart changes nothing); otherwise both are written anew, 0600 and atomically, and
 * every HAProxy with a master socket reloads (hitless: the old worker keeps its connections and
 * its forged certificates, valid until the old intermediate expires). Safe to call concurrently
 * (rotations run one at a time).
 */
export class Forge {
  readonly constraints: ForgeConstraints;
  private readonly validityMs: number;
  private readonly paths;
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(private readonly o: ForgeOptions) {
    this.constraints = forgeConstraints(o.allow, o.deny);
    this.validityMs = o.validityMs ?? FORGE_VALIDITY_MS;
    this.paths = certDirLayout(o.certDir);
  }

  /** Checks or writes the files (before HAProxy is expected up: it reads them at start), then keeps them rotated. */
  static async start(o: ForgeOptions): Promise<Forge> {
    const forge = new Forge(o);
    for (const i of forge.constraints.inexact) o.log.warn({ pattern: i.pattern, list: i.list }, `onDemand.forge: ${i.why}`);
    await forge.refresh(false);
    return forge;
  }

  /** Replaces the intermediate now (what the timer does at half-life). */
  rotate(): Promise<void> {
    return this.serial(() => this.replace('rotation asked'));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const next = this.running.then(job);
    this.running = next.catch(() => undefined);
    return next;
  }

  private refresh(scheduled: boolean): Promise<void> {
    return this.serial(async () => {
      const current = await this.currentNotAfter();
      if (current === undefined || current.getTime() - Date.now() < this.validityMs / 2) {
        await this.replace(current === undefined ? 'no valid intermediate for this root and these patterns' : 'half its life is over');
      } else {
        this.schedule(current);
      }
    }).catch((err: Error) => {
      if (!scheduled) throw err;
      // A failed rotation is retried in an hour; the current intermediate still has days left.
      this.o.log.error({ err: err.message }, 'forge intermediate not rotated: retrying in an hour');
      this.arm(3_600_000);
    });
  }

  private async replace(reason: string): Promise<void> {
    const existed = (await this.currentNotAfter({ anyRoot: true })) !== undefined;
    const intermediate = await this.o.ca.issueIntermediate({ constraints: this.constraints, validityMs: this.validityMs, issuerId: this.o.issuerId });
    const forgeKey = await defaultCertificate(intermediate.notAfter);
    await ensureDir(this.paths.forgeDir);
    await writeFileAtomic(this.paths.forgeDefaultCert, forgeKey, { mode: 0o600 });
    await writeFileAtomic(this.paths.forgeCaFile, intermediate.certPem + intermediate.keyPem, { mode: 0o600 });
    this.o.log.info({ reason, notAfter: intermediate.notAfter.toISOString() }, 'forge intermediate written');
    // Files no HAProxy could have loaded yet need no reload (the first start).
    if (existed && this.o.reload) {
      for (const r of await this.o.reload('onDemand.forge: a new intermediate (ca-sign-file is read at start only)')) {
        if (!r.reloaded) this.o.log.error({ instance: r.instance, err: r.error ?? 'no master socket' }, 'forge intermediate written but not loaded: reload HAProxy');
      }
    }
    this.schedule(intermediate.notAfter);
  }

  private schedule(notAfter: Date): void {
    this.arm(notAfter.getTime() - this.validityMs / 2 - Date.now());
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.refresh(true), Math.max(1_000, Math.min(ms, MAX_TIMER_MS)));
    this.timer.unref();
  }

  /**
   * The stored intermediate's end, when it is signed by our root and carries exactly these
   * constraints (with anyRoot: any intermediate file at all), and the default certificate is there.
   */
  private async currentNotAfter(o: { anyRoot?: boolean } = {}): Promise<Date | undefined> {
    let pem: string;
    try {
      pem = await readFile(this.paths.forgeCaFile, 'utf8');
      await readFile(this.paths.forgeDefaultCert);
    } catch (err) {
      if (fsErrorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return undefined;
    }
    const notAfter = new Date(cert.validTo);
    if (o.anyRoot) return notAfter;
    const root = new X509Certificate(this.o.ca.rootPem);
    const ours = cert.checkIssued(root) && cert.verify(root.publicKey) && cert.raw.includes(nameConstraintsExtensionDer(this.constraints));
    return ours && notAfter > new Date() ? notAfter : undefined;
  }
}

/** The forge bind's default certificate and key (self-signed; only its key matters: HAProxy puts it in every forged certificate). */
async function defaultCertificate(notAfter: Date): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair('ecdsa-p256');
  const subject = { organization: 'haproxy-certd', commonName: 'haproxy-certd forge key' };
  const cert = buildCertificate({ subject, publicKey, issuer: selfSignedIssuer(subject, privateKey), notBefore: new Date(Date.now() - 60_000), notAfter });
  return cert.pem + exportPrivateKeyPem(privateKey);
}
