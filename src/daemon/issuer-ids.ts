/** The local CA every daemon has (its id): a module of its own so the CLI can name it without loading the issuers. */
export const EMBEDDED_ISSUER = 'internal';
