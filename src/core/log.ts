import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays for command output). Keys and PEMs are never passed
 * to the logger; the redact list is a second line of defence.
 */
export function createLogger(level = process.env.CERTD_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    { level, base: undefined, redact: { paths: ['keyPem', '*.keyPem', 'pem', '*.pem', 'token'], censor: '[redacted]' } },
    pino.destination(2),
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
