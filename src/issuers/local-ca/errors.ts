import { errorKind } from '../../core/errors.js';

/** A supplied root is not a CA certificate (no basicConstraints CA:true, or keyUsage without keyCertSign). */
export class LocalCaNotCaError extends errorKind('CERTD_E_LOCAL_CA_NOT_CA', 'input') {}

/** `ca init` found a root already stored for this issuer and was not told to replace it. */
export class LocalCaExistsError extends errorKind('CERTD_E_LOCAL_CA_EXISTS', 'conflict') {}

/** The root was made with pathlen:0 (as roots were before the forge), so it cannot sign the forge intermediate. */
export class LocalCaNoIntermediateError extends errorKind('CERTD_E_LOCAL_CA_NO_INTERMEDIATE', 'input') {}
