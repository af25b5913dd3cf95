import { z } from 'zod';
import { ConfigError } from '../core/errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const NUMERIC = /^\d+(?:\.\d+)?$/;

/** setTimeout silently fires after 1 ms for longer delays, so timer durations are capped here. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const DURATION_HINT = 'a duration like 500ms, 10s, 5m, 1h, 30d (or 1h30m), or a number of seconds';

/**
 * Parses "500ms", "10s", "5m", "1h", "30d", "1h30m" or a number of seconds (also as a numeric
 * string, as `${VAR}` substitution gives) into milliseconds. Returns undefined when unreadable.
 * Pure; safe to call concurrently.
 */
export function tryParseDuration(input: unknown): number | undefined {
  if (typeof input === 'number') {
    return Number.isFinite(input) && input >= 0 ? Math.round(input * 1000) : undefined;
  }
  if (typeof input !== 'string') return undefined;
  const text = input.trim();
  if (NUMERIC.test(text)) return Math.round(Number(text) * 1000);
  if (!WHOLE.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(PART)) {
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return Math.round(ms);
}

/** Like tryParseDuration but throws ConfigError saying what is accepted. */
export function parseDuration(input: unknown): number {
  const ms = tryParseDuration(input);
  if (ms === undefined) {
    throw new ConfigError(`${JSON.stringify(input)} is not a duration: write ${DURATION_HINT}`);
  }
  return ms;
}

export interface DurationRules {
  /** Inclusive upper bound in ms, e.g. MAX_TIMER_MS for anything that becomes a timer. */
  maxMs?: number;
}

/** Zod field for a positive duration; parses to milliseconds. */
export function duration(rules: DurationRules = {}) {
  return z
    .union([z.string(), z.number()], { error: `expected ${DURATION_HINT}` })
    .transform((input, ctx) => {
      const ms = tryParseDuration(input);
      if (ms === undefined || ms <= 0) {
        const why = ms === undefined ? `expected ${DURATION_HINT}` : 'must be above zero';
        ctx.issues.push({ code: 'custom', input, message: `${why}; got ${JSON.stringify(input)}` });
        return z.NEVER;
      }
      if (rules.maxMs !== undefined && ms > rules.maxMs) {
        ctx.issues.push({
          code: 'custom',
          input,
          message: `${JSON.stringify(input)} is too long: at most ${formatDuration(rules.maxMs)} here`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ format: 'duration' });
}

/** Largest whole unit, rounded down: only used to state an upper bound, so it never overstates. */
function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit]) return `${Math.floor(ms / UNIT_MS[unit])}${unit}`;
  }
  return `${ms}ms`;
}
