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
// Digests go into request paths; anything else in a manifest is ignored.
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
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

/** What a DELETE names: a tag, a manifest by digest, or a blob. */
export type DeleteTarget = 'tag' | 'manifest' | 'blob';

/**
 * A DELETE where protected tags bind the caller: refused when it removes a protected tag or
 * anything a protected tag needs to pull — its manifest, the platform manifests of an index, and
 * the config and layer blobs of those.
 */
export async function guardDelete(client: RegistryQuestions, tags: ProtectedTags, caller: Caller, name: string, reference: string, target: DeleteTarget): Promise<GuardResult> {
  try {
    if (target === 'tag') {
      const protection = tags.protecting(caller, name, reference);
      if (protection === null || (await currentDigest(client, name, reference)) === null) return PASS;
      return { ok: false, code: 'DENIED', message: `tag "${reference}" of ${name} is protected (protectedTags[${protection - 1}]) and may not be deleted` };
    }
    for (const tag of await listTags(client, name)) {
      const protection = tags.protecting(caller, name, tag);
      if (protection === null) continue;
      const needed = await closure(client, name, tag, target);
      const role = needed.get(reference);
      if (role !== undefined) {
        return {
          ok: false,
          code: 'DENIED',
          message: `${reference} is ${role} the protected tag "${tag}" of ${name} (protectedTags[${protection - 1}]); it may not be deleted`,
        };
      }
    }
    return PASS;
  } catch (err) {
    return unavailable(err);
  }
}

/**
 * Digests a tag needs, each with the words that say how: for a manifest DELETE its manifest and
 * an index's platform manifests (one GET); for a blob DELETE also every config and layer (one
 * more GET per platform).
 */
async function closure(client: RegistryQuestions, name: string, tag: string, target: 'manifest' | 'blob'): Promise<Map<string, string>> {
  const needed = new Map<string, string>();
  const top = await manifestAt(client, name, tag);
  if (top === null) return needed;
  needed.set(top.digest, 'the manifest of');
  const children = referencesOf(top.body, 'manifests');
  for (const child of children) needed.set(child, 'a platform manifest of');
  if (target === 'blob') {
    const platforms = children.length ? await Promise.all(children.map((d) => manifestAt(client, name, d))) : [top];
    for (const platform of platforms) {
      if (platform === null) continue;
      for (const blob of [...referencesOf(platform.body, 'config'), ...referencesOf(platform.body, 'layers')]) needed.set(blob, 'a blob of');
    }
  }
  return needed;
}

async function manifestAt(client: RegistryQuestions, name: string, reference: string): Promise<{ digest: string; body: string } | null> {
  const answer = await client.ask('GET', `/v2/${name}/manifests/${reference}`, { accept: ANY_MANIFEST });
  if (answer.status === 404) return null;
  const digest = answer.headers.get('docker-content-digest');
  if (answer.status !== 200 || !digest) throw new Error(`the registry answered ${answer.status} when asked for ${name}:${reference}`);
  return { digest, body: answer.body };
}

/** The digests under `field` of a manifest (`manifests` and `layers` are lists, `config` one descriptor); only well-formed ones. */
function referencesOf(body: string, field: 'manifests' | 'config' | 'layers'): string[] {
  let value: unknown;
  try {
    value = (JSON.parse(body) as Record<string, unknown>)[field];
  } catch {
    return [];
  }
  const list = Array.isArray(value) ? value : value ? [value] : [];
  return list.map((d) => (d as { digest?: unknown } | null)?.digest).filter((d): d is string => typeof d === 'string' && DIGEST.test(d));
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
