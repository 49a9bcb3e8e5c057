import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GroupDirectory } from '../../src/access/groups.js';
import { createLogger } from '../../src/observe/logger.js';

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(check(), `timed out waiting for ${what}`);
}

test('groups from the config and the htgroup file, the file re-read when replaced; a broken file keeps the last good groups', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-groups-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'htgroup');
  await writeFile(file, 'team-a: alice bob\n');
  const groups = await GroupDirectory.open({ admins: ['root'], 'team-a': ['carol'] }, file, { logger: createLogger('silent'), debounceMs: 10, pollIntervalMs: 50 });
  t.after(() => groups.close());
  assert.deepEqual([...groups.groupsOf('alice')], ['team-a']);
  assert.deepEqual([...groups.groupsOf('carol')], ['team-a']);
  assert.deepEqual([...groups.groupsOf('root')], ['admins']);
  assert.deepEqual([...groups.groupsOf(null)], []);

  await writeFile(`${file}.new`, 'team-b: alice\n');
  await rename(`${file}.new`, file);
  await waitFor(() => groups.groupsOf('alice').has('team-b'), 'the replaced file');
  assert.equal(groups.groupsOf('alice').has('team-a'), false, 'alice left team-a with the new file');
  assert.equal(groups.groupsOf('bob').size, 0);

  await writeFile(file, Buffer.from([0xff, 0xfe, 0x00]));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual([...groups.groupsOf('alice')], ['team-b'], 'a binary file is not used');
});
