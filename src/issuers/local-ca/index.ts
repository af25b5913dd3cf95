export { LocalCa, initLocalCa, loadOrCreateLocalCa, type InitLocalCaOptions, type LeafRequest } from './ca.js';
export { LocalCaExistsError, LocalCaNoIntermediateError, LocalCaNotCaError } from './errors.js';
export type { IntermediateBundle, IntermediateRequest } from './intermediate.js';
export { LocalCaIssuer, type LocalCaIssuerOptions } from './issuer.js';
export { createRoot, loadRoot, type LocalCaRoot } from './root.js';
export { localCaKeys, type LocalCaStorage } from './storage.js';
