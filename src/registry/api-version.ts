/** Clients check this header on `/v2/` answers to know they speak to a v2 registry. */
export const API_VERSION_HEADER = 'docker-distribution-api-version';
export const API_VERSION = 'registry/2.0';
