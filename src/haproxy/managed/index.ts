export { ManagedHaproxy, HaproxyStartError, type ManagedHaproxyOptions } from './managed-haproxy.js';
export { masterCommand } from './master-cli.js';
