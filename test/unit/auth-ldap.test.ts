/** How the directory source builds its group search (the search itself runs against slapd in test/e2e). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupQuery, IN_CHAIN_RULE } from '../../src/auth/sources/ldap.js';

test('group searches: the filter and the depth the source follows itself', () => {
  const rows: [string, Parameters<typeof groupQuery>[0], { filter: string; depth: number }][] = [
    ['defaults', {}, { filter: '(member={dn})', depth: 3 }],
    ['posixGroup', { groupFilter: '(memberUid={username})', nestedGroupsDepth: 0 }, { filter: '(memberUid={username})', depth: 0 }],
    ['Active Directory in-chain: one search, the server nests', { nestedGroupsInChain: true }, { filter: `(member:${IN_CHAIN_RULE}:={dn})`, depth: 0 }],
    ['in-chain with a filter of the operator', { nestedGroupsInChain: true, groupFilter: `(&(objectClass=group)(member:${IN_CHAIN_RULE}:={dn}))` }, { filter: `(&(objectClass=group)(member:${IN_CHAIN_RULE}:={dn}))`, depth: 0 }],
  ];
  for (const [what, config, expected] of rows) assert.deepEqual(groupQuery(config), expected, what);
});
