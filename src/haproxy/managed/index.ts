export { ManagedHaproxy, HaproxyStartError, haproxyBinary, type ManagedHaproxyOptions } from './managed-haproxy.js';
export { masterCommand } from './master-cli.js';
