export { acmeKeys, loadOrCreateAccount, type AcmeAccountRecord, type AcmeStorage } from './account.js';
export { acmeChannel } from './channel.js';
export { AcmeClient, type AcmeClientOptions, type NewAccountOptions, type NewOrderOptions, type WaitOptions } from './client.js';
export {
  AcmeIssuer,
  type AcmeChallengeType,
  type AcmeIssueRequest,
  type AcmeIssuerOptions,
  type Dns01Solver,
  type Http01Solver,
} from './issuer.js';
export { jwkThumbprint, publicJwk, type EabCredentials, type EcJwk } from './jws.js';
export {
  AcmeBadNonceError,
  AcmeChallengeError,
  AcmeConnectionError,
  AcmeDnsError,
  AcmeEabError,
  AcmeError,
  AcmeMalformedError,
  AcmeProblemError,
  AcmeRateLimitedError,
  AcmeRejectedIdentifierError,
  AcmeTimeoutError,
  AcmeUnauthorizedError,
  AcmeUnreachableError,
  type AcmeProblem,
  type AcmeSubproblem,
} from './problems.js';
export { ariCertId, parseRenewalInfo } from './renewal-info.js';
export type { AcmeAuthorization, AcmeChallenge, AcmeDirectory, AcmeOrder, RenewalInfo } from './resources.js';
