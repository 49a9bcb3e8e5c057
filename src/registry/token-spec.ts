/**
 * The Docker token specification: "a token should never be returned with less than 60 seconds to
 * live". docker and containers/image treat a shorter `expires_in` as 60 s and go on using the
 * token that long, so a shorter token failed their pushes half-way (measured: 10 s tokens, the
 * blob's final PUT refused as expired). `auth.tokenTtlSeconds` below this gives this.
 */
export const MIN_TOKEN_SECONDS = 60;
