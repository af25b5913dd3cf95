import { InvalidNameError } from '../../core/errors.js';

/*
 * Names that go into DNS messages. `_` is allowed because challenge names (`_acme-challenge.`)
 * and TSIG key names carry it; anything else outside letters, digits and `-` is refused before a
 * message is built, so no caller can smuggle a space, a `;` or an empty label onto the wire.
 * The same shape as the config's zone and key name fields.
 */
const LABEL = /^[a-z0-9_-]{1,63}$/;
const MAX_NAME = 253;

/**
 * Validates a DNS name (letters, digits, `-`, `_` labels) and returns it lowercase without the
 * trailing dot. Throws InvalidNameError naming `what`. Pure.
 */
export function dnsName(input: unknown, what: string): string {
  if (typeof input !== 'string' || input.length === 0) {
    throw new InvalidNameError(`${what} is empty: give a DNS name like _acme-challenge.example.com`);
  }
  const shown = JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input);
  const name = input.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > MAX_NAME) {
    throw new InvalidNameError(`${what} ${shown} must be 1 to ${MAX_NAME} characters long`);
  }
  for (const label of name.split('.')) {
    if (!LABEL.test(label)) {
      throw new InvalidNameError(
        `${what} ${shown} has an invalid label ${JSON.stringify(label)}: use letters, digits, "-" and "_", 1-63 per label`,
      );
    }
  }
  return name;
}

/** True when `name` is `zone` itself or below it (both already normalized by dnsName). Pure. */
export function isInZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}
