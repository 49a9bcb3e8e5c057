import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfCommand } from '../../src/cli/self-command.js';

test('the hint names a command that runs this CLI from where the operator stands', (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'self-command-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const checkout = path.join(root, 'registry-gate');
  const script = path.join(checkout, 'dist', 'cli', 'main.js');
  mkdirSync(path.dirname(script), { recursive: true });
  writeFileSync(script, '');
  writeFileSync(path.join(checkout, 'package.json'), '{"name":"registry-gate"}');
  const bin = path.join(root, 'bin');
  mkdirSync(bin);
  const other = path.join(root, 'other-bin');
  mkdirSync(other);
  writeFileSync(path.join(other, 'registry-gate'), '#!/bin/sh\n');
  symlinkSync(script, path.join(bin, 'registry-gate'));
  const elsewhere = path.join(root, 'elsewhere');
  mkdirSync(elsewhere);
  const rows: Array<[string, { cwd: string; pathVariable: string; script?: string }, string]> = [
    ['on PATH as a link to this script (global install, the image)', { cwd: elsewhere, pathVariable: `/usr/bin:${bin}` }, 'registry-gate'],
    ['another registry-gate on PATH is not this one', { cwd: elsewhere, pathVariable: other }, `node ${script}`],
    ['in the checkout, not on PATH', { cwd: checkout, pathVariable: '/usr/bin' }, 'npx registry-gate'],
    ['a relative PATH entry is not trusted', { cwd: root, pathVariable: 'bin' }, `node ${script}`],
    ['anywhere else: the script by its absolute path', { cwd: elsewhere, pathVariable: '/usr/bin' }, `node ${script}`],
    ['a path that needs quoting is quoted', { cwd: elsewhere, pathVariable: '', script: path.join(root, "it's here.js") }, `node '${path.join(root, "it'\\''s here.js")}'`],
  ];
  writeFileSync(path.join(root, "it's here.js"), '');
  for (const [what, where, expected] of rows) {
    assert.equal(selfCommand({ script: where.script ?? script, cwd: where.cwd, pathVariable: where.pathVariable }), expected, what);
  }
});
