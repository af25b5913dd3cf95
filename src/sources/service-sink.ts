import type { Logger } from 'pino';
import { errorCode, NotFoundError } from '../core/errors.js';
import type { SourceSink } from './source.js';

/** The part of CertService a sink needs (CertService satisfies it). */
export interface ImportTarget {
  importPem(certPem: string, keyPem: string, origin?: 'source'): Promise<{ cert: { id: string } }>;
  remove(id: string): Promise<unknown>;
}

/**
 * Hands what sources find to the one import flow (store → deploy) and remembers which
 * certificate id each key gave, so a dropped key removes exactly that certificate — unless
 * another key still gives the same id, whose bundle is then imported again.
 * The memory is per process: a folder removed while the daemon was down is not dropped at
 * the next start (nothing remembers it came from a source).
 * Safe to share between sources; calls for different keys may overlap.
 */
export class ServiceSink implements SourceSink {
  private readonly given = new Map<string, { id: string; certPem: string; keyPem: string }>();

  constructor(
    private readonly service: ImportTarget,
    private readonly log: Logger,
  ) {}

  async put(key: string, certPem: string, keyPem: string): Promise<void> {
    const { cert } = await this.service.importPem(certPem, keyPem, 'source');
    const before = this.given.get(key);
    this.given.set(key, { id: cert.id, certPem, keyPem });
    this.log.info({ source: key, cert: cert.id }, 'certificate from source imported');
    // The key now gives another certificate (its names changed): the old one is no longer given.
    if (before && before.id !== cert.id) await this.release(key, before.id);
  }

  async drop(key: string): Promise<void> {
    const had = this.given.get(key);
    this.given.delete(key);
    if (had) await this.release(key, had.id);
  }

  reject(key: string, error: Error): void {
    this.log.warn({ source: key, code: errorCode(error), err: error.message }, 'source holds no usable certificate; the previous one keeps serving');
  }

  /** `key` no longer gives certificate `id`: removed, or re-imported from another key giving it. */
  private async release(key: string, id: string): Promise<void> {
    const other = [...this.given.values()].find((g) => g.id === id);
    if (other) {
      this.log.info({ source: key, cert: id }, 'source no longer gives this certificate; another source does');
      await this.service.importPem(other.certPem, other.keyPem, 'source');
      return;
    }
    try {
      await this.service.remove(id);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    this.log.info({ source: key, cert: id }, 'source no longer gives this certificate; removed');
  }
}
