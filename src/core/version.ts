import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The package's root directory: this file is `src/core/version.ts` in a checkout and
 * `dist/core/version.js` once built or installed, two levels below it either way.
 */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The version in the package's package.json: one source for `--version`, logs and metrics. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
