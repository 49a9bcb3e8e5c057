import { spawnSync } from 'node:child_process';

/**
 * Test options for tests that check interop with Apache's own `htpasswd`: `npm test` installs
 * apache2-utils, so they run there; `npm run test:unit` needs no Debian package, so they skip.
 */
export const NEEDS_APACHE_HTPASSWD =
  spawnSync('htpasswd', ['-nbB', 'probe', 'probe'], { stdio: 'pipe' }).status === 0 ? {} : { skip: 'htpasswd (apache2-utils) is not installed' };
