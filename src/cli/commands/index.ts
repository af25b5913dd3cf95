import type { Command } from 'commander';
import { registerCa } from './ca.js';
import { registerCerts } from './certs.js';
import { registerDemo } from './demo.js';
import { registerGenerated } from './generated.js';
import { registerHaproxyConfig } from './haproxy-config.js';
import { registerRun } from './run.js';
import { registerStatus } from './status.js';
import { registerStore } from './store.js';
import { registerWait } from './wait.js';

export function registerCommands(program: Command): void {
  registerRun(program);
  registerDemo(program);
  registerCa(program);
  registerCerts(program);
  registerStatus(program);
  registerHaproxyConfig(program);
  registerWait(program);
  registerStore(program);
  registerGenerated(program);
}
