/**
 * The DER of the first `label` block in PEM text (e.g. a chain's leaf), or undefined when there is
 * none. Decodes base64 only: nothing is parsed or checked beyond the block's markers. Pure.
 */
export function firstPemDer(pem: string, label: string): Buffer | undefined {
  const begin = `-----BEGIN ${label}-----`;
  const start = pem.indexOf(begin);
  const end = start < 0 ? -1 : pem.indexOf(`-----END ${label}-----`, start);
  return end < 0 ? undefined : Buffer.from(pem.slice(start + begin.length, end), 'base64');
}

/** Wraps DER in a PEM block with 64-column base64 lines (what OpenSSL and HAProxy expect). Pure. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
