/**
 * deploy/kubernetes/ against the Kubernetes schemas (kubernetes-models: types, required fields,
 * formats), since no cluster runs here, and against itself: the names it refers to exist, the
 * selectors find the pods, the probes use ports the container has, and the ConfigMap's config is
 * one the proxy loads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { loadConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/defaults.js';

const DIR = path.resolve(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: any };

function manifests(): Array<{ file: string; doc: Manifest }> {
  const out: Array<{ file: string; doc: Manifest }> = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()) {
    for (const parsed of parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'))) {
      assert.deepEqual(parsed.errors, [], `${file}: YAML errors`);
      out.push({ file, doc: parsed.toJSON() as Manifest });
    }
  }
  return out;
}

const all = manifests();
const find = (kind: string, name: string) => all.find(({ doc }) => doc.kind === kind && doc.metadata.name === name)?.doc;

test('every manifest validates against the schema of its kind', () => {
  assert.ok(all.length >= 7, `${all.length} manifests`);
  for (const { file, doc } of all) {
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    assert.ok(Model, `${file}: ${doc.apiVersion} ${doc.kind} is not one this test knows`);
    assert.doesNotThrow(() => new Model(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata.name}`);
  }
  // The check can fail: a port given as text is refused.
  const broken = structuredClone(find('Deployment', 'registry-gate')!);
  broken.spec.template.spec.containers[0].ports[0].containerPort = 'https';
  assert.throws(() => new Deployment(broken as never).validate(), /containerPort must be integer/);
});

test('kustomization.yaml lists every manifest', () => {
  const kustomization = parseAllDocuments(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8'))[0]!.toJSON() as { resources: string[] };
  assert.deepEqual([...kustomization.resources].sort(), [...new Set(all.map((m) => m.file))].sort());
});

test('the Deployment, Service and PodDisruptionBudget fit together', () => {
  const deployment = find('Deployment', 'registry-gate')!;
  const pod = deployment.spec.template;
  const labels = pod.metadata.labels as Record<string, string>;
  const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.ok(selects(deployment.spec.selector.matchLabels));
  assert.ok(selects(find('Service', 'registry-gate')!.spec.selector), 'the Service finds the pods');
  assert.ok(selects(find('PodDisruptionBudget', 'registry-gate')!.spec.selector.matchLabels), 'the budget covers them');
  assert.ok(deployment.spec.replicas >= 2, 'several replicas');

  const container = pod.spec.containers[0];
  const ports = new Set((container.ports as Array<{ name: string }>).map((p) => p.name));
  assert.ok(ports.has(container.readinessProbe.httpGet.port) && container.readinessProbe.httpGet.path === '/readyz');
  assert.ok(ports.has(container.livenessProbe.httpGet.port) && container.livenessProbe.httpGet.path === '/healthz');
  for (const p of find('Service', 'registry-gate')!.spec.ports as Array<{ targetPort: string }>) assert.ok(ports.has(p.targetPort), `Service targets ${p.targetPort}`);
  assert.ok(pod.spec.terminationGracePeriodSeconds > defaultConfig().drainSeconds, 'pushes under way may finish');

  for (const volume of pod.spec.volumes as Array<{ configMap?: { name: string }; secret?: { secretName: string } }>) {
    if (volume.configMap) assert.ok(find('ConfigMap', volume.configMap.name), `ConfigMap ${volume.configMap.name}`);
    if (volume.secret) assert.ok(find('Secret', volume.secret.secretName), `Secret ${volume.secret.secretName}`);
  }
  for (const env of container.env as Array<{ valueFrom?: { secretKeyRef?: { name: string; key: string } } }>) {
    const ref = env.valueFrom?.secretKeyRef;
    if (ref) assert.ok(find('Secret', ref.name)?.stringData?.[ref.key] !== undefined, `Secret ${ref.name} has ${ref.key}`);
  }
});

test("the ConfigMap's config loads, and its paths are where the Deployment mounts things", (t) => {
  const deployment = find('Deployment', 'registry-gate')!;
  const container = deployment.spec.template.spec.containers[0];
  const mounts = container.volumeMounts as Array<{ name: string; mountPath: string }>;
  const text = find('ConfigMap', 'registry-gate-config')!.data['proxy.config.json'] as string;
  const dir = mkdtempSync(path.join(tmpdir(), 'rg-k8s-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'proxy.config.json');
  writeFileSync(file, text);
  // The environment the Deployment gives the container, from the Secrets it names.
  const env: Record<string, string> = {};
  for (const e of container.env as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>) {
    const ref = e.valueFrom?.secretKeyRef;
    env[e.name] = ref ? (find('Secret', ref.name)!.stringData[ref.key] as string) : e.value!;
  }
  const { config } = loadConfig(file, env);
  assert.equal(config.redis, find('Secret', 'registry-gate-redis')!.stringData.url);
  assert.ok(config.redisOptions.secretKey, 'what the replicas keep in Redis is sealed');
  const under = (p: string) => mounts.find((m) => p.startsWith(`${m.mountPath}/`) || p === m.mountPath);
  assert.equal(under(config.auth.htpasswdFile)?.name, 'users');
  assert.equal(under(config.stateDir)?.name, 'state');
  assert.ok(container.args.includes(`${mounts.find((m) => m.name === 'config')!.mountPath}/proxy.config.json`));
  assert.equal(config.listen.split(':').at(-1), String((container.ports as Array<{ name: string; containerPort: number }>).find((p) => p.name === 'https')!.containerPort));
});

test('Redis asks for the password the gate uses, and only the gate\'s pods may reach it', () => {
  const secret = find('Secret', 'registry-gate-redis')!.stringData as Record<string, string>;
  assert.equal(decodeURIComponent(new URL(secret.url!).password), secret.password, 'the URL carries the Secret\'s password');
  const redis = find('StatefulSet', 'redis')!.spec.template.spec.containers[0];
  const args = redis.args as string[];
  assert.equal(args[args.indexOf('--requirepass') + 1], '$(REDIS_PASSWORD)');
  const variable = (redis.env as Array<{ name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }>).find((e) => e.name === 'REDIS_PASSWORD')!;
  assert.deepEqual(variable.valueFrom.secretKeyRef, { name: 'registry-gate-redis', key: 'password' });

  const policy = find('NetworkPolicy', 'redis')!;
  assert.deepEqual(policy.spec.podSelector.matchLabels, find('StatefulSet', 'redis')!.spec.template.metadata.labels);
  assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
  assert.equal(policy.spec.ingress.length, 1, 'one way in');
  const [rule] = policy.spec.ingress as Array<{ from: Array<{ podSelector: { matchLabels: Record<string, string> } }>; ports: Array<{ port: number }> }>;
  assert.deepEqual(rule!.from, [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'registry-gate' } } }]);
  const gatePods = find('Deployment', 'registry-gate')!.spec.template.metadata.labels as Record<string, string>;
  assert.equal(gatePods['app.kubernetes.io/name'], 'registry-gate', 'the policy lets the gate\'s pods in');
  assert.deepEqual(rule!.ports.map((p) => p.port), [6379]);
});
