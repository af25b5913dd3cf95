export { parseRuntimeAddress, formatRuntimeAddress, type RuntimeAddress } from './address.js';
export { RuntimeClient, runtimeChannel, type RuntimeClientOptions, type CallOptions, type CrtListLine } from './client.js';
export type { CrtListEntry, MapEntry, RuntimeInfo, SslCertDetails, StoreListing } from './reply.js';
export { RuntimeSession, type SessionOptions, type ExecuteOptions } from './session.js';
