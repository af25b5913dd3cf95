import { readFile } from 'node:fs/promises';
import type { SourceSpec } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { DirectorySource } from './directory.js';
import { HttpSource } from './http.js';
import type { CertSource } from './source.js';

export type { CertSource, SourceSink } from './source.js';
export { DirectorySource, type DirectorySourceOptions } from './directory.js';
export { HttpSource, type HttpSourceOptions } from './http.js';
export { ServiceSink, type ImportTarget } from './service-sink.js';
export * from './errors.js';

/**
 * Builds the sources of a config's `sources:` list (not started). `names` fills `{name}` URL
 * templates; a template without names is a config error. Reads each caBundle file once here.
 */
export async function createSources(specs: readonly SourceSpec[], opts: { names?: readonly string[] } = {}): Promise<CertSource[]> {
  return Promise.all(
    specs.map(async (spec, i): Promise<CertSource> => {
      if (spec.type === 'directory') return new DirectorySource({ path: spec.path, everyMs: spec.every });
      const names = spec.names ?? opts.names;
      if (spec.url.includes('{name}') && !names?.length) {
        throw new ConfigError(`sources[${i}]: the url has {name} but there are no names to fetch`);
      }
      let caBundle: string | undefined;
      if (spec.caBundle) {
        caBundle = await readFile(spec.caBundle, 'utf8').catch((cause: Error) => {
          throw new ConfigError(`sources[${i}].caBundle: cannot read ${spec.caBundle}: ${cause.message}`, { cause });
        });
      }
      return new HttpSource({
        url: spec.url,
        names: spec.url.includes('{name}') ? names : undefined,
        headers: spec.headers,
        everyMs: spec.every,
        timeoutMs: spec.timeout,
        caBundle,
      });
    }),
  );
}
