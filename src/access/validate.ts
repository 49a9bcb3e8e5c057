/** What is wrong with the access keys of a config, key by key, in the operator's words. */
import type { Config } from '../config/types.js';
import { globProblem } from './glob.js';
import { subjectProblem } from './rules.js';

export function accessProblems(c: Config): string[] {
  const problems: string[] = [];
  if (c.access !== null && c.auth.mode === 'none') {
    problems.push('access: rules need users; set auth.mode to "private" or "read-public" (rules replace what the mode allows), or remove access');
  }
  const knownGroups = new Set(Object.keys(c.groups));
  // A directory names its groups itself; only without one can an unknown name be a typo.
  const groupsFromSources = c.auth.sources.some((s) => s.type === 'ldap' || s.type === 'oidc');
  const issuers = new Set(c.auth.sources.flatMap((s) => (s.type === 'oidc' ? [s.name] : [])));
  const checkWho = (who: string[], path: string): void => {
    who.forEach((subject, j) => {
      const problem = subjectProblem(subject);
      if (problem) problems.push(`${path}[${j}]: ${problem}`);
      else if (subject.startsWith('oidc:') && !issuers.has(subject.slice(5))) {
        problems.push(`${path}[${j}]: "${subject}" names no oidc source; add { "type": "oidc", "name": "${subject.slice(5)}", … } to auth.sources or correct the name`);
      } else if (subject.startsWith('group:') && c.groupsFile === null && !groupsFromSources && !knownGroups.has(subject.slice(6))) {
        problems.push(`${path}[${j}]: group "${subject.slice(6)}" is not defined; add it to "groups" or set "groupsFile"`);
      }
    });
  };
  const checkGlobs = (globs: string[], path: string, allowSlash: boolean): void => {
    globs.forEach((glob, j) => {
      const problem = globProblem(glob, allowSlash);
      if (problem) problems.push(`${path}[${j}]: "${glob}" ${problem}`);
    });
  };
  (c.access ?? []).forEach((rule, i) => {
    checkWho(rule.who, `access[${i}].who`);
    checkGlobs(rule.repositories, `access[${i}].repositories`, true);
  });
  c.protectedTags.forEach((p, i) => {
    checkWho(p.who, `protectedTags[${i}].who`);
    checkGlobs(p.repositories, `protectedTags[${i}].repositories`, true);
    checkGlobs(p.tags, `protectedTags[${i}].tags`, false);
  });
  for (const [group, members] of Object.entries(c.groups)) {
    if (!/^[^\s:]+$/.test(group)) problems.push(`groups.${group}: a group name has no spaces or colons`);
    members.forEach((user, j) => {
      if (/[\s:]/.test(user) || user === '') problems.push(`groups.${group}[${j}]: "${user}" is not a user name (no spaces or colons)`);
    });
  }
  return problems;
}

export function accessWarnings(c: Config): string[] {
  const warnings: string[] = [];
  (c.access ?? []).forEach((rule, i) => {
    const actions = new Set(rule.actions);
    if (!actions.has('*') && actions.has('push') && !actions.has('pull')) {
      warnings.push(`access[${i}]: grants push without pull; every client reads while it pushes, so pushes there will be refused`);
    }
  });
  return warnings;
}
