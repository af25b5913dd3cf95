import { pino, type Logger } from 'pino';
import { ConfigError } from './errors.js';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays for command output). Keys and PEMs are never passed
 * to the logger; the redact list is a second line of defence.
 */
export function createLogger(level = process.env.CERTD_LOG_LEVEL ?? 'info'): Logger {
  const levels = [...Object.keys(pino.levels.values), 'silent'];
  if (!levels.includes(level)) throw new ConfigError(`CERTD_LOG_LEVEL "${level}" is not a log level: use one of ${levels.join(', ')}`);
  return pino(
    { level, base: undefined, redact: { paths: ['keyPem', '*.keyPem', 'pem', '*.pem', 'token'], censor: '[redacted]' } },
    pino.destination(2),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
