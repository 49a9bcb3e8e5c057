/**
 * Tag paging through the gate in front of the real registry 2.8, which ignores `n` and `last`:
 * the pages a spec client walks, Link header to Link header, add up to the whole list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from '../harness/registry-client.js';
import { pushSmallImage } from '../harness/small-image.js';
import { startPlainStack } from '../harness/stack.js';

test('tags/list?n=2 through the gate pages with Link headers; the registry alone returns everything', async (t) => {
  const stack = await startPlainStack();
  t.after(() => stack.stop());
  const tags = ['1.0', '1.1', '2.0', 'latest', 'v3'];
  for (const tag of tags) await pushSmallImage(stack.proxy.url, 'paged/app', tag);

  const direct = JSON.parse((await get(`${stack.registry.url}/v2/paged/app/tags/list?n=2`)).body.toString()) as { tags: string[] };
  assert.equal(direct.tags.length, tags.length, 'registry 2.8 ignores n (what the gate makes up for)');

  const seen: string[] = [];
  let next: string | null = '/v2/paged/app/tags/list?n=2';
  for (let pages = 0; next !== null && pages < 10; pages++) {
    const res = await get(`${stack.proxy.url}${next}`);
    assert.equal(res.status, 200);
    const page = JSON.parse(res.body.toString()) as { name: string; tags: string[] };
    assert.equal(page.name, 'paged/app');
    assert.ok(page.tags.length <= 2, JSON.stringify(page));
    seen.push(...page.tags);
    const link = res.headers.link;
    next = typeof link === 'string' ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
  }
  assert.deepEqual(seen, [...tags].sort());
});
