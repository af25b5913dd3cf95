import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startBindServer, tsigKey, type TestBindServer, type TestTsigKey } from './bind9.js';

const run = promisify(execFile);

/**
 * The DNS of the DNS-01 tests and bench, all private bind9 servers on loopback:
 * - `customer`: customer.test, whose `_acme-challenge` is a CNAME into acme.delegated.test, and a
 *   CNAME loop at loop.customer.test. It holds no TSIG key at all.
 * - `delegated`: acme.delegated.test and one.test, with key `delegatedKey`.
 * - `other`: two.test, hook.test and slow.test, with key `otherKey`.
 * - `secondary`: a secondary of slow.test from `other`, told of changes only by notify().
 * - `resolver`: recursive, forwarding each zone to its server (slow.test to the secondary):
 *   certd's dns.resolver. `caResolver`, the same, is Pebble's -dnsserver: as with a real CA, our
 *   lookups (NXDOMAIN for a name before its record exists) are not in the CA's resolver cache.
 */
export interface Dns01World {
  customer: TestBindServer;
  delegated: TestBindServer;
  other: TestBindServer;
  secondary: TestBindServer;
  resolver: TestBindServer;
  caResolver: TestBindServer;
  delegatedKey: TestTsigKey;
  otherKey: TestTsigKey;
  dir: string;
  /** Writes an executable hook script (bash) and returns its path. */
  hook(name: string, body: string): Promise<string>;
  /** A hook that writes the record into hook.test on `other` with nsupdate (lego's exec protocol). */
  nsupdateHook(): Promise<string>;
  /** The TXT values `server` itself serves at `name` (dig +norec). */
  txt(server: TestBindServer, name: string): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startDns01World(): Promise<Dns01World> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-dns01-'));
  const delegatedKey = tsigKey('certd-delegated');
  const otherKey = tsigKey('certd-other');
  const servers: TestBindServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const customer = await startBindServer({
      zones: [
        {
          name: 'customer.test',
          records: [
            '_acme-challenge CNAME customer.acme.delegated.test.',
            '_acme-challenge.loop CNAME _acme-challenge.loop2.customer.test.',
            '_acme-challenge.loop2 CNAME _acme-challenge.loop.customer.test.',
          ],
        },
      ],
    });
    servers.push(customer);
    const delegated = await startBindServer({
      zones: [
        { name: 'acme.delegated.test', updateKey: delegatedKey },
        { name: 'one.test', updateKey: delegatedKey },
      ],
    });
    servers.push(delegated);
    const other = await startBindServer({
      zones: ['two.test', 'hook.test', 'slow.test'].map((name) => ({ name, updateKey: otherKey })),
    });
    servers.push(other);
    const secondary = await startBindServer({ zones: [{ name: 'slow.test', secondaryOfPort: other.port }], startTimeoutMs: 30_000 });
    servers.push(secondary);
    const forwards = () => ({
      recursion: true,
      zones: [
        { name: 'customer.test', forwardToPort: customer.port },
        { name: 'acme.delegated.test', forwardToPort: delegated.port },
        { name: 'one.test', forwardToPort: delegated.port },
        { name: 'two.test', forwardToPort: other.port },
        { name: 'hook.test', forwardToPort: other.port },
        { name: 'slow.test', forwardToPort: secondary.port },
      ],
    });
    const resolver = await startBindServer(forwards());
    servers.push(resolver);
    const caResolver = await startBindServer(forwards());
    servers.push(caResolver);
    const hook = async (name: string, body: string) => {
      const path = join(dir, name);
      await writeFile(path, `#!/bin/bash\nset -eu\n${body}\n`);
      await chmod(path, 0o700);
      return path;
    };
    return {
      customer,
      delegated,
      other,
      secondary,
      resolver,
      caResolver,
      delegatedKey,
      otherKey,
      dir,
      hook,
      nsupdateHook: () =>
        hook(
          'nsupdate-hook',
          [
            'action=$1 fqdn=$2 value=$3',
            'case $action in',
            '  present) change="update add $fqdn 60 TXT \\"$value\\"" ;;',
            '  cleanup) change="update delete $fqdn TXT \\"$value\\"" ;;',
            '  *) echo "unknown action $action" >&2; exit 2 ;;',
            'esac',
            `printf 'server 127.0.0.1 ${other.port}\\nzone hook.test\\n%s\\nsend\\n' "$change" | nsupdate -y 'hmac-sha256:${otherKey.name}:${otherKey.secret}'`,
          ].join('\n'),
        ),
      txt: async (server, name) => {
        const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(server.port), '+short', '+norec', 'TXT', name]);
        return stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => l.replaceAll('"', ''))
          .sort();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
