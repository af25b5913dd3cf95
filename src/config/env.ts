import { ConfigError } from '../core/errors.js';

/** The environment as process.env shapes it. */
export type Env = Readonly<Record<string, string | undefined>>;

// `$${` escapes a literal `${`; `${…}` is a reference; an unclosed `${` is caught separately.
const TOKEN = /\$\$\{|\$\{([^{}]*)\}|\$\{/g;
const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/**
 * Replaces `${VAR}` and `${VAR:-default}` (default when VAR is unset or empty) in one scalar.
 * Substituted text is not scanned again, so a variable's value cannot pull in other variables.
 * Throws ConfigError naming the variable; the caller adds where it was.
 * Pure; safe to call concurrently.
 */
export function substituteEnv(text: string, env: Env): string {
  return text.replace(TOKEN, (token: string, body: string | undefined) => {
    if (token === '$${') return '${';
    if (body === undefined) {
      throw new ConfigError(
        '"${" is not closed, or nests another "${": write ${NAME} or ${NAME:-default}, or $${ for a literal "${"',
      );
    }
    const ref = REFERENCE.exec(body);
    if (!ref) {
      throw new ConfigError(
        `${JSON.stringify(token)} is not a valid reference: write \${NAME} or \${NAME:-default} (NAME: letters, digits, _)`,
      );
    }
    const [, name, fallback] = ref as unknown as [string, string, string | undefined];
    const value = env[name];
    if (fallback !== undefined) return value === undefined || value === '' ? fallback : value;
    if (value === undefined) {
      throw new ConfigError(`environment variable ${name} is not set: set it, or write \${${name}:-default}`);
    }
    return value;
  });
}
