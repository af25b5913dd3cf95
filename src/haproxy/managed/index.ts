export { ManagedHaproxy, HaproxyStartError, haproxyBinary, type ManagedHaproxyOptions } from './managed-haproxy.js';
export { masterCommand, parseReloadAnswer, type ReloadAnswer } from './master-cli.js';
