/**
 * The library surface of haproxy-certd, kept small on purpose: load a config, run the daemon, and
 * the contracts (Issuer, Store) and error classes a caller needs to embed or extend it. Everything
 * else is internal and may change in any release.
 */
export { loadConfig, parseConfigText, configFromObject, ConfigValidationError, type ConfigProblem, type ParseConfigOptions } from './config/load.js';
export type {
  AcmeIssuerSpec,
  ApiSpec,
  CertificateSpec,
  Config,
  ConfigInput,
  Env,
  HaproxyInstanceSpec,
  HaproxySpec,
  IssuerSpec,
  LocalCaIssuerSpec,
  OnDemandSpec,
  SourceSpec,
  StoreSpec,
  TlsOptions,
} from './config/load.js';
export { Daemon, type DaemonOptions } from './daemon/daemon.js';
export { createLogger, type Logger } from './core/log.js';
export type { CertBundle } from './core/bundle.js';
export type { Issuer, IssueRequest, IssuedBundle, KeyType, RenewalWindow } from './issuers/issuer.js';
export type { CertMeta, CertOrigin, Lock, LockOptions, PendingIssue, Store, StoredCert } from './store/store.js';
// All of it: the error classes and their stable codes are the contract callers switch on.
export * from './core/errors.js';
export { VERSION } from './core/version.js';
