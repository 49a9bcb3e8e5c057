/**
 * Enforces protected tags against the registry's current state: which digest a tag points to is
 * the registry's knowledge, so it is asked right before the change is forwarded. (Two pushes
 * racing for the same new protected tag can both pass; the later one wins, as in the registry.)
 */
import { createHash } from 'node:crypto';
import type { Caller } from '../access/rules.js';
import type { ProtectedTags } from '../access/protected-tags.js';
import { isTagName } from '../registry/route.js';
import { ANY_MANIFEST, listPages, type RegistryQuestions } from './upstream-client.js';

export type GuardResult = { ok: true } | { ok: false; code: 'DENIED' | 'UNAVAILABLE'; message: string };

const PASS: GuardResult = { ok: true };
const TAG_PAGE = 1000;
const MAX_TAG_ROUNDS = 100;

export function manifestDigest(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** The digest `tag` points to, null when the tag does not exist. */
async function currentDigest(client: RegistryQuestions, name: string, tag: string): Promise<string | null> {
  const answer = await client.ask('HEAD', `/v2/${name}/manifests/${tag}`, { accept: ANY_MANIFEST });
  if (answer.status === 404) return null;
  const digest = answer.headers.get('docker-content-digest');
  if (answer.status !== 200 || !digest) throw new Error(`the registry answered ${answer.status} when asked which digest ${name}:${tag} has`);
  return digest;
}

/** A manifest PUT to a protected tag: allowed when the tag is new or already has this digest. */
export async function guardManifestPut(client: RegistryQuestions, name: string, tag: string, body: Buffer, protection: number): Promise<GuardResult> {
  try {
    const current = await currentDigest(client, name, tag);
    const pushed = manifestDigest(body);
    if (current === null || current === pushed) return PASS;
    return {
      ok: false,
      code: 'DENIED',
      message: `tag "${tag}" of ${name} is protected (protectedTags[${protection - 1}]): it points to ${current} and may not be moved to ${pushed}; push a new tag`,
    };
  } catch (err) {
    return unavailable(err);
  }
}

/** A manifest DELETE: refused when a protected tag is the reference or points to the digest. */
export async function guardManifestDelete(
  client: RegistryQuestions,
  tags: ProtectedTags,
  caller: Caller,
  name: string,
  reference: string,
  isTag: boolean,
): Promise<GuardResult> {
  try {
    if (isTag) {
      const protection = tags.protecting(caller, name, reference);
      if (protection === null || (await currentDigest(client, name, reference)) === null) return PASS;
      return { ok: false, code: 'DENIED', message: `tag "${reference}" of ${name} is protected (protectedTags[${protection - 1}]) and may not be deleted` };
    }
    for (const tag of await listTags(client, name)) {
      const protection = tags.protecting(caller, name, tag);
      if (protection === null) continue;
      if ((await currentDigest(client, name, tag)) === reference) {
        return {
          ok: false,
          code: 'DENIED',
          message: `${reference} is what the protected tag "${tag}" of ${name} points to (protectedTags[${protection - 1}]); it may not be deleted`,
        };
      }
    }
    return PASS;
  } catch (err) {
    return unavailable(err);
  }
}

async function listTags(client: RegistryQuestions, name: string): Promise<string[]> {
  const all: string[] = [];
  for await (const page of listPages(client, `/v2/${name}/tags/list`, null, { field: 'tags', accept: isTagName, pageSize: TAG_PAGE, maxRounds: MAX_TAG_ROUNDS, notFoundIsEmpty: true })) {
    all.push(...page);
  }
  return all;
}

function unavailable(err: unknown): GuardResult {
  // Fail closed: a protection that cannot be checked is not waived.
  return { ok: false, code: 'UNAVAILABLE', message: `the proxy could not check protected tags (${(err as Error).message}); try again` };
}
