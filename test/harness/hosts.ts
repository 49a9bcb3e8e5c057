import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

const HOSTS = '/etc/hosts';
const MARK = '# registry-gate test';

/**
 * dockerd treats every 127.0.0.0/8 registry as insecure and skips certificate checks, and the
 * machine's other addresses are not ours to send traffic to. A test name mapped to ::1 is
 * loopback too, but outside 127.0.0.0/8, so docker really verifies TLS for it. Returns the name
 * and a function that removes exactly the line it added.
 */
export interface LoopbackName {
  name: string;
  remove: () => Promise<void>;
}

export async function addLoopbackName(prefix = 'rg'): Promise<LoopbackName> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}.test`;
  const line = `::1 ${name} ${MARK}`;
  const text = await readFile(HOSTS, 'utf8');
  await writeFile(HOSTS, `${text.endsWith('\n') || text === '' ? text : `${text}\n`}${line}\n`);
  return {
    name,
    async remove() {
      const now = await readFile(HOSTS, 'utf8');
      await writeFile(HOSTS, now.split('\n').filter((l) => l !== line).join('\n'));
    },
  };
}
