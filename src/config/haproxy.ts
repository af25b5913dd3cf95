import { resolve } from 'node:path';
import { z } from 'zod';
import { certDirLayout } from '../haproxy/cert-dir.js';
import { formatRuntimeAddress, parseRuntimeAddress, type RuntimeAddress } from '../haproxy/runtime/address.js';
import { duration, MAX_TIMER_MS } from './duration.js';
import { dnsName, doc, hostPortField, pathField, portField } from './fields.js';

const RUNTIME_FORMS = 'unix:/path/to/admin.sock or tcp:host:port';

/**
 * A Runtime API address, normalized to `unix:<absolute path>` or `tcp:<host>:<port>`; a relative
 * socket path resolves against baseDir like every other path in the config.
 */
function runtimeAddress(baseDir: string, forms: readonly RuntimeAddress['kind'][], expected: string) {
  return z.string().transform((text, ctx) => {
    let address: RuntimeAddress | undefined;
    let why = '';
    try {
      // Only the written-out forms here (the parser also takes HAProxy's, for pasted lines).
      if (/^(unix|tcp):/.test(text)) address = parseRuntimeAddress(text);
    } catch (err) {
      why = `: ${(err as Error).message}`;
    }
    if (!address || !forms.includes(address.kind)) {
      ctx.issues.push({ code: 'custom', input: text, message: `expected ${expected}; got ${JSON.stringify(text)}${why}` });
      return z.NEVER;
    }
    return formatRuntimeAddress(address.kind === 'unix' ? { kind: 'unix', path: resolve(baseDir, address.path) } : address);
  });
}

function instanceSchema(baseDir: string) {
  return z
    .strictObject({
      runtime: runtimeAddress(baseDir, ['unix', 'tcp'], RUNTIME_FORMS).meta(
        doc('The runtime API, a `stats socket … level admin`: unix:/path or tcp:host:port.', 'unix:/run/haproxy/admin.sock'),
      ),
      name: z
        .string()
        .regex(/^[\x21-\x7e]{1,128}$/, 'a name is 1-128 printable characters without spaces')
        .optional()
        .meta(doc('Shown in logs, metrics and status; defaults to the runtime address.', 'edge-1')),
      master: runtimeAddress(baseDir, ['unix'], 'unix:/path/to/master.sock (the socket given to haproxy -S)')
        .optional()
        .meta(
          doc(
            'The master CLI (`haproxy -W -S <socket>`): enables a hitless reload for the rare change the runtime API cannot take (e.g. a certificate larger than one CLI buffer).',
            'unix:/run/haproxy-master.sock',
          ),
        ),
    })
    .transform((i) => ({ runtime: i.runtime, name: i.name ?? i.runtime, ...(i.master ? { master: i.master } : {}) }));
}

/** The `haproxy:` section. crtList defaults to `<certDir>/crt-list.txt`. */
export function haproxySchema(baseDir: string) {
  return z
    .strictObject({
      instances: z
        .array(instanceSchema(baseDir))
        .prefault([])
        .meta(doc('HAProxy instances listed by address.', [{ runtime: 'unix:/run/haproxy/admin.sock' }])),
      discover: z
        .strictObject({
          dns: dnsName({ underscore: true }).meta(doc('An A/AAAA name (Swarm `tasks.<service>`), or an SRV name starting with `_` (its ports win).', 'tasks.haproxy')),
          port: portField().meta(doc('The runtime API port on every address found.', 9999)),
          every: duration({ maxMs: MAX_TIMER_MS }).prefault('10s').meta(doc('How often the name is resolved again.')),
          server: hostPortField(53).optional().meta(doc('A DNS server to ask instead of the system resolver (port 53 by default).', '127.0.0.11:53')),
        })
        .optional()
        .meta(doc('Instances found by resolving a DNS name, on top of the listed ones. A failed lookup keeps the last set; an empty answer is believed.')),
      reconcileEvery: duration({ maxMs: MAX_TIMER_MS })
        .prefault('60s')
        .meta(doc('How often every instance is compared with the desired set (drift repair); a pass whose listings are byte-identical to the last pass, with nothing changed since, only reads them.')),
      certDir: pathField(baseDir).meta(
        doc('Where the daemon writes the PEMs, crt-list.txt, known.map, acme.map and the Lua action; HAProxy loads them at start.', '/etc/haproxy/certd'),
      ),
      crtList: pathField(baseDir)
        .optional()
        .meta(doc('The crt-list your bind lines load; `<certDir>/crt-list.txt` when absent.', '/etc/haproxy/certd/crt-list.txt')),
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
    .transform((h) => ({ ...h, crtList: h.crtList ?? certDirLayout(h.certDir).crtList }));
}
