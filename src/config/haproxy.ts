import { join, resolve } from 'node:path';
import { z } from 'zod';
import { duration, MAX_TIMER_MS } from './duration.js';
import { dnsName, formatHostPort, hostPortField, parseHostPort, pathField, portField } from './fields.js';

const RUNTIME_FORMS = 'unix:/path/to/admin.sock or tcp:host:port';

/**
 * A Runtime API address, normalized to `unix:<absolute path>` or `tcp:<host>:<port>`; a relative
 * socket path resolves against baseDir like every other path in the config.
 */
function runtimeAddress(baseDir: string) {
  return z.string().transform((text, ctx) => {
    if (text.startsWith('unix:') && text.length > 'unix:'.length && !text.includes('\0')) {
      return `unix:${resolve(baseDir, text.slice('unix:'.length))}`;
    }
    const hp = text.startsWith('tcp:') ? parseHostPort(text.slice('tcp:'.length)) : undefined;
    if (hp) return `tcp:${formatHostPort(hp)}`;
    ctx.issues.push({ code: 'custom', input: text, message: `expected ${RUNTIME_FORMS}; got ${JSON.stringify(text)}` });
    return z.NEVER;
  });
}

function instanceSchema(baseDir: string) {
  return z
    .strictObject({
      runtime: runtimeAddress(baseDir),
      /** Shown in logs, metrics and status; defaults to the runtime address. */
      name: z.string().regex(/^[\x21-\x7e]{1,128}$/, 'a name is 1-128 printable characters without spaces').optional(),
      /**
       * The master CLI (`haproxy -W -S <socket>`), `unix:/path`: enables a hitless reload for the
       * rare change the runtime API cannot take (e.g. a certificate larger than one CLI buffer).
       */
      master: z
        .string()
        .regex(/^unix:[^\0]+$/, 'expected unix:/path/to/master.sock (the socket given to haproxy -S)')
        .transform((m) => `unix:${resolve(baseDir, m.slice('unix:'.length))}`)
        .optional(),
    })
    .transform((i) => ({ runtime: i.runtime, name: i.name ?? i.runtime, ...(i.master ? { master: i.master } : {}) }));
}

/** The `haproxy:` section. crtList defaults to `<certDir>/crt-list.txt`. */
export function haproxySchema(baseDir: string) {
  return z
    .strictObject({
      instances: z.array(instanceSchema(baseDir)).prefault([]),
      /** Instances found by resolving a DNS name (e.g. Swarm `tasks.haproxy`), on top of the listed ones. */
      discover: z
        .strictObject({
          /** A/AAAA name (Swarm `tasks.<service>`), or an SRV name starting with `_` (its ports win). */
          dns: dnsName({ underscore: true }),
          port: portField(),
          every: duration({ maxMs: MAX_TIMER_MS }).prefault('10s'),
          /** A DNS server to ask instead of the system resolver (host:port). */
          server: hostPortField(53).optional(),
        })
        .optional(),
      /** Full comparison of every instance with the desired set (drift repair). */
      reconcileEvery: duration({ maxMs: MAX_TIMER_MS }).prefault('60s'),
      certDir: pathField(baseDir),
      crtList: pathField(baseDir).optional(),
    })
    .superRefine((h, ctx) => {
      const seen = new Map<string, number>();
      h.instances.forEach((instance, i) => {
        const first = seen.get(instance.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['instances', i],
            message: `instance ${JSON.stringify(instance.name)} is listed twice (also instances[${first}]); give each a distinct runtime or name`,
          });
        } else {
          seen.set(instance.name, i);
        }
      });
    })
    .transform((h) => ({ ...h, crtList: h.crtList ?? join(h.certDir, 'crt-list.txt') }));
}
