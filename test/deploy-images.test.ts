// The images, the compose file and the Kubernetes manifests, checked by parsing them: no
// Docker engine or cluster runs here, so they must be right by construction. Ports, probes,
// users, the GPU request and the autoscaling metric must agree across all of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');
const PORT = 8080;

type Obj = Record<string, unknown>;
const obj = (v: unknown, what: string): Obj => {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${what} is not a mapping`);
  return v as Obj;
};
const arr = (v: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(v), `${what} is not a list`);
  return v;
};

interface Stage {
  image: string;
  name: string | null;
  instructions: Instruction[];
}

/** A Dockerfile as its stages, each with its own instructions in order. */
function stagesOf(path: string): Stage[] {
  const df = DockerfileParser.parse(read(path));
  const stages: Stage[] = [];
  const froms = df.getFROMs();
  for (const ins of df.getInstructions()) {
    if (ins.getKeyword() === 'FROM') {
      const from = froms.find((f) => f.getRange().start.line === ins.getRange().start.line)!;
      stages.push({ image: from.getImage() ?? '', name: from.getBuildStage(), instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${path}: ${ins.getKeyword()} before FROM`);
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return stages;
}

const all = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.getKeyword() === keyword);
const last = (s: Stage, keyword: string): Instruction | undefined => all(s, keyword).at(-1);

function envOf(s: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const ins of all(s, 'ENV')) {
    for (const p of (ins as unknown as { getProperties(): Array<{ getName(): string; getValue(): string | null }> }).getProperties()) {
      env.set(p.getName(), p.getValue() ?? '');
    }
  }
  return env;
}

function jsonArgs(ins: Instruction): string[] {
  const json = (ins as unknown as { getJSONStrings?(): Array<{ getJSONValue(): string }> }).getJSONStrings?.() ?? [];
  return json.map((j) => j.getJSONValue());
}

/** The checks every image must pass; returns the final stage for image-specific ones. */
function checkImage(path: string): Stage {
  const stages = stagesOf(path);
  const final = stages.at(-1)!;
  const names = new Set(stages.map((s) => s.name).filter(Boolean));

  // Multi-stage copies name stages that exist, and build-context copies name files that exist.
  for (const stage of stages) {
    for (const copy of all(stage, 'COPY')) {
      const from = (copy as unknown as { getFromFlag(): { getValue(): string | null } | null }).getFromFlag();
      const args = copy.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--'));
      if (from) {
        assert.ok(names.has(from.getValue() ?? ''), `${path}: COPY --from=${from.getValue()} names no stage`);
      } else {
        for (const src of args.slice(0, -1)) {
          if (src === '.') continue;
          assert.ok(existsSync(join(ROOT, src)), `${path}: COPY source ${src} is not in the repository`);
        }
      }
    }
  }

  const user = last(final, 'USER');
  assert.ok(user, `${path}: the final stage sets no USER (it would run as root)`);
  const uid = user.getArgumentsContent()!.split(':')[0]!;
  // Numeric, so that Kubernetes' runAsNonRoot can verify it.
  assert.match(uid, /^[0-9]+$/, `${path}: USER ${uid} is not numeric`);
  assert.notEqual(Number(uid), 0, `${path}: USER is root`);

  const env = envOf(final);
  assert.equal(env.get('PORT'), String(PORT), `${path}: ENV PORT`);
  assert.equal(env.get('NODE_ENV'), 'production');
  assert.deepEqual(all(final, 'EXPOSE').map((e) => e.getArgumentsContent()), [String(PORT)], `${path}: EXPOSE`);

  const health = last(final, 'HEALTHCHECK');
  assert.ok(health, `${path}: no HEALTHCHECK`);
  const hc = health.getArgumentsContent()!;
  const flags = new Map((health as unknown as { getFlags(): Array<{ getName(): string; getValue(): string | null }> }).getFlags().map((f) => [f.getName(), f.getValue()]));
  assert.match(flags.get('interval') ?? '', /^\d+s$/, `${path}: HEALTHCHECK --interval`);
  assert.match(flags.get('start-period') ?? '', /^\d+s$/, `${path}: HEALTHCHECK --start-period`);
  // The probe follows PORT and asks /health on the container's own loopback.
  assert.match(hc, /http:\/\/127\.0\.0\.1:' \+ \(process\.env\.PORT \|\| 8080\) \+ '\/health'/);
  assert.match(hc, /process\.exit\(r\.ok \? 0 : 1\)/);

  // The image starts what `npm start` starts (minus the build, done in the build stage).
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  const cmd = last(final, 'CMD');
  assert.ok(cmd, `${path}: no CMD`);
  assert.equal(jsonArgs(cmd).join(' '), pkg.scripts.start, `${path}: CMD differs from npm start`);

  return final;
}

const runsOf = (s: Stage): string => all(s, 'RUN').map((r) => r.getArgumentsContent()).join('\n');
const copySources = (s: Stage): string[] => all(s, 'COPY').map((c) => c.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--'))[0]!);

test('CPU image: Node 20 slim, non-root, port, health check, npm start, serving the edge bundle', () => {
  const stages = stagesOf('deploy/Dockerfile.cpu');
  const final = checkImage('deploy/Dockerfile.cpu');
  assert.equal(final.image, 'node:20-bookworm-slim');
  assert.equal(envOf(final).get('DLM_DEVICE'), 'cpu');
  // The build stage makes the bundle (npm run bundle) into one folder; the final stage copies
  // exactly that folder into its WORKDIR, so CMD's dist/server/main.js is the bundle's.
  const build = stages.find((s) => s.name === 'build');
  assert.ok(build, 'no build stage');
  const out = /npm run bundle -- --out (\S+)/.exec(runsOf(build))?.[1];
  assert.ok(out, 'the build stage does not run npm run bundle -- --out DIR');
  const copies = all(final, 'COPY').map((c) => c.getArguments().map((a) => a.getValue()));
  assert.deepEqual(copies, [[out, last(final, 'WORKDIR')!.getArgumentsContent()!]], 'the final stage copies more or less than the bundle');
  assert.equal((all(final, 'COPY')[0] as unknown as { getFromFlag(): { getValue(): string | null } }).getFromFlag().getValue(), 'build');
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.bundle ?? '', /node dist\/scripts\/bundle\.js$/, 'npm run bundle must end in the bundler so --out reaches it');
});

test('GPU image: the build stage builds and prunes, the final stage carries dist, node_modules and the models', () => {
  const stages = stagesOf('deploy/Dockerfile.gpu');
  const final = stages.at(-1)!;
  const build = stages.find((s) => s.name === 'build');
  assert.ok(build, 'no build stage');
  assert.match(runsOf(build), /npm run build/);
  assert.match(runsOf(build), /npm prune --omit=dev/);
  for (const p of ['/app/dist', '/app/node_modules', '/app/package.json', '/app/models/zoo', '/app/server/public']) {
    assert.ok(copySources(final).includes(p), `final stage does not copy ${p}`);
  }
});


test('GPU image: CUDA 13 runtime base with Node 20, provider installed and checked at build', () => {
  const stages = stagesOf('deploy/Dockerfile.gpu');
  const final = checkImage('deploy/Dockerfile.gpu');
  assert.match(final.image, /^nvidia\/cuda:13\.\d+\.\d+-(cudnn-)?runtime-ubuntu24\.04$/);
  const env = envOf(final);
  assert.equal(env.get('DLM_DEVICE'), 'cuda');
  assert.match(env.get('NVIDIA_DRIVER_CAPABILITIES') ?? '', /compute/);
  // Node comes from the official image of the same major version.
  const nodeCopy = all(final, 'COPY').find((c) => c.getArgumentsContent()!.includes('/usr/local/bin/node'));
  assert.ok(nodeCopy, 'the GPU image copies no node binary');
  const from = (nodeCopy as unknown as { getFromFlag(): { getValue(): string | null } }).getFromFlag().getValue();
  assert.equal(stages.find((s) => s.name === from)?.image, 'node:20-bookworm-slim');
  // The provider is installed from npm in the build stage and verified against the CUDA base.
  const build = stages.find((s) => s.name === 'build')!;
  assert.match(all(build, 'RUN').map((r) => r.getArgumentsContent()).join('\n'), /bash scripts\/install-cuda\.sh --skip-lib-check/);
  const finalRuns = all(final, 'RUN').map((r) => r.getArgumentsContent()!);
  assert.ok(finalRuns.some((r) => /^bash scripts\/install-cuda\.sh --check --skip-driver$/.test(r.trim())), 'final stage does not run the installer check');
  // Every installer flag the image uses is one the installer has.
  const usage = read('scripts/install-cuda.sh');
  for (const run of [...finalRuns, ...all(build, 'RUN').map((r) => r.getArgumentsContent()!)]) {
    for (const m of run.matchAll(/install-cuda\.sh((?: --[a-z-]+(?: [^\s&\\-][^\s&\\]*)?)+)/g)) {
      for (const flag of m[1]!.match(/--[a-z-]+/g)!) assert.match(usage, new RegExp(`^\\s+${flag}\\)`, 'm'), `install-cuda.sh has no ${flag}`);
    }
  }
  // The check runs as root before USER, after the script is copied in.
  const order = final.instructions.map((i) => `${i.getKeyword()} ${i.getArgumentsContent()}`);
  const checkAt = order.findIndex((o) => o.includes('install-cuda.sh --check'));
  assert.ok(order.findIndex((o) => o.startsWith('COPY') && o.includes('scripts/install-cuda.sh')) < checkAt);
  assert.ok(checkAt < order.findIndex((o) => o.startsWith('USER')));
});

test('.dockerignore keeps build outputs and caches out of the context but not the sources', () => {
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const p of ['node_modules', 'dist', 'build', '.work', '.git']) assert.ok(ignored.includes(p), `${p} not ignored`);
  for (const p of ['engine', 'models', 'scripts', 'package.json', 'package-lock.json']) assert.ok(!ignored.includes(p), `${p} must stay in the context`);
});

test('compose starts one CPU and one GPU service from those images, on port 8080 inside', () => {
  const compose = obj(parseYaml(read('deploy/compose.yaml'), { merge: true }), 'compose');
  const services = obj(compose.services, 'services');
  assert.deepEqual(Object.keys(services).sort(), ['cpu', 'gpu']);
  const hostPorts = new Set<string>();
  for (const [name, dockerfile] of [['cpu', 'deploy/Dockerfile.cpu'], ['gpu', 'deploy/Dockerfile.gpu']] as const) {
    const svc = obj(services[name], name);
    const build = obj(svc.build, `${name}.build`);
    assert.equal(build.dockerfile, dockerfile);
    assert.ok(statSync(join(ROOT, 'deploy', String(build.context))).isDirectory());
    assert.ok(existsSync(join(ROOT, 'deploy', String(build.context), dockerfile)));
    const env = obj(svc.environment, `${name}.environment`);
    assert.equal(env.PORT, String(PORT));
    const ports = arr(svc.ports, `${name}.ports`).map(String);
    assert.equal(ports.length, 1);
    const [host, inside] = ports[0]!.split(':');
    assert.equal(inside, String(PORT));
    assert.ok(!hostPorts.has(host!), `host port ${host} used twice`);
    hostPorts.add(host!);
  }
  const gpu = obj(services.gpu, 'gpu');
  const devices = arr(obj(obj(obj(gpu.deploy, 'deploy').resources, 'resources').reservations, 'reservations').devices, 'devices');
  const dev = obj(devices[0], 'device');
  assert.equal(dev.driver, 'nvidia');
  assert.equal(dev.count, 1);
  assert.deepEqual(dev.capabilities, ['gpu']);
});

function k8s(): Map<string, Obj> {
  const byKind = new Map<string, Obj>();
  const dir = join(ROOT, 'deploy/k8s');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    if (f === 'prometheus-adapter-values.yaml') continue;
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      assert.equal(doc.errors.length, 0, `${f}: ${doc.errors.map(String).join('; ')}`);
      const o = obj(doc.toJS(), f);
      byKind.set(String(o.kind), o);
    }
  }
  return byKind;
}

test('Kubernetes: a Deployment asking one GPU, non-root, probing /health on the served port', () => {
  const dep = k8s().get('Deployment')!;
  assert.ok(dep, 'no Deployment');
  const spec = obj(obj(obj(dep.spec, 'spec').template, 'template').spec, 'pod spec');
  const podSec = obj(spec.securityContext, 'pod securityContext');
  assert.equal(podSec.runAsNonRoot, true);
  assert.equal(podSec.runAsUser, 1000);
  const containers = arr(spec.containers, 'containers').map((c) => obj(c, 'container'));
  assert.equal(containers.length, 1);
  const c = containers[0]!;
  const ports = arr(c.ports, 'ports').map((p) => obj(p, 'port'));
  const http = ports.find((p) => p.name === 'http');
  assert.equal(http?.containerPort, PORT);
  const env = new Map(arr(c.env, 'env').map((e) => [String(obj(e, 'env').name), obj(e, 'env')]));
  assert.equal(env.get('PORT')?.value, String(PORT));
  assert.equal(env.get('DLM_DEVICE')?.value, 'cuda');
  const resources = obj(c.resources, 'resources');
  assert.equal(obj(resources.limits, 'limits')['nvidia.com/gpu'], 1);
  for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    const get = obj(obj(c[probe], probe).httpGet, `${probe}.httpGet`);
    assert.equal(get.path, '/health', probe);
    assert.ok(get.port === 'http' || get.port === PORT, `${probe} port ${String(get.port)}`);
  }
  const sec = obj(c.securityContext, 'container securityContext');
  assert.equal(sec.allowPrivilegeEscalation, false);
  assert.equal(sec.readOnlyRootFilesystem, true);
  // A read-only root needs a writable /tmp.
  const mounts = arr(c.volumeMounts, 'volumeMounts').map((m) => obj(m, 'mount'));
  assert.ok(mounts.some((m) => m.mountPath === '/tmp'));
  // The user the pod runs as is the one the image declares.
  const user = last(stagesOf('deploy/Dockerfile.gpu').at(-1)!, 'USER')!.getArgumentsContent()!;
  assert.equal(user, `${podSec.runAsUser}:${podSec.runAsGroup}`);
});

test('Kubernetes: the Service selects the pods and targets the http port', () => {
  const m = k8s();
  const svc = obj(m.get('Service')?.spec, 'Service.spec');
  const dep = obj(m.get('Deployment')?.spec, 'Deployment.spec');
  const labels = obj(obj(obj(dep.template, 'template').metadata, 'metadata').labels, 'labels');
  for (const [k, v] of Object.entries(obj(svc.selector, 'selector'))) assert.equal(labels[k], v, `selector ${k}`);
  const port = obj(arr(svc.ports, 'ports')[0], 'port');
  assert.equal(port.targetPort, 'http');
});

test('Kubernetes: the HPA scales the Deployment on the queue-depth metric the adapter serves', () => {
  const m = k8s();
  const hpa = m.get('HorizontalPodAutoscaler')!;
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  const spec = obj(hpa.spec, 'hpa.spec');
  const target = obj(spec.scaleTargetRef, 'scaleTargetRef');
  assert.equal(target.kind, 'Deployment');
  assert.equal(target.name, obj(m.get('Deployment')!.metadata, 'metadata').name);
  assert.ok(Number(spec.maxReplicas) > Number(spec.minReplicas));
  const metric = obj(arr(spec.metrics, 'metrics')[0], 'metric');
  assert.equal(metric.type, 'Pods');
  const name = obj(obj(metric.pods, 'pods').metric, 'pods.metric').name;

  const adapter = obj(parseYaml(read('deploy/k8s/prometheus-adapter-values.yaml')), 'adapter values');
  const rule = obj(arr(obj(adapter.rules, 'rules').custom, 'custom')[0], 'rule');
  assert.equal(obj(rule.name, 'rule.name').as, name);
  assert.match(String(rule.seriesQuery), /^vllm:num_requests_waiting\{/);
  assert.match(String(rule.metricsQuery), /<<\.Series>>\{<<\.LabelMatchers>>\}/);
  const kustomize = obj(parseYaml(read('deploy/k8s/kustomization.yaml')), 'kustomization');
  assert.deepEqual(arr(kustomize.resources, 'resources').sort(), ['deployment.yaml', 'hpa.yaml', 'service.yaml']);
});

// Every manifest, validated against the Kubernetes API's OpenAPI schemas (kubernetes-models'
// generated validators; the PodMonitor against the Prometheus Operator's CRD schema).
const SCHEMAS: Record<string, () => Promise<new (o: Obj) => { validate(): void }>> = {
  'apps/v1/Deployment': async () => (await import('kubernetes-models/apps/v1')).Deployment as never,
  'v1/Service': async () => (await import('kubernetes-models/v1')).Service as never,
  'autoscaling/v2/HorizontalPodAutoscaler': async () => (await import('kubernetes-models/autoscaling/v2')).HorizontalPodAutoscaler as never,
  'monitoring.coreos.com/v1/PodMonitor': async () => (await import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1')).PodMonitor as never,
};

function manifests(): Array<{ file: string; o: Obj }> {
  const dir = join(ROOT, 'deploy/k8s');
  const out: Array<{ file: string; o: Obj }> = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'prometheus-adapter-values.yaml' && f !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) out.push({ file: f, o: obj(doc.toJS(), f) });
  }
  return out;
}

test('Kubernetes: every manifest is valid against the API schema of its kind', async () => {
  const seen: string[] = [];
  for (const { file, o } of manifests()) {
    const key = `${String(o.apiVersion)}/${String(o.kind)}`;
    const model = SCHEMAS[key];
    assert.ok(model, `${file}: no schema known for ${key}`);
    const Model = await model();
    assert.doesNotThrow(() => new Model(o).validate(), `${file}: ${key} does not validate`);
    seen.push(String(o.kind));
  }
  assert.deepEqual(seen.sort(), ['Deployment', 'HorizontalPodAutoscaler', 'PodMonitor', 'Service']);
  // The validator is live: the same Deployment with a port named where a number belongs fails.
  const dep = structuredClone(manifests().find((m) => m.o.kind === 'Deployment')!.o) as { spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } };
  dep.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'http';
  const Deployment = await SCHEMAS['apps/v1/Deployment']!();
  assert.throws(() => new Deployment(dep as unknown as Obj).validate(), /containerPort must be integer/);
});

/** Every DLM_* / PORT / HOST / LOG_LEVEL setting the images, compose and the Deployment pass, with the value they give it. */
function passedSettings(): Map<string, Set<string>> {
  const settings = new Map<string, Set<string>>();
  const add = (name: string, value: unknown): void => {
    if (!(name === 'PORT' || name === 'HOST' || name === 'LOG_LEVEL' || name.startsWith('DLM_'))) return; // NODE_ENV, HOME, NVIDIA_*: not the server's
    if (!settings.has(name)) settings.set(name, new Set());
    // Compose's ${VAR:-} and a Secret reference pass no literal value.
    if (typeof value === 'string' && !value.includes('${')) settings.get(name)!.add(value);
  };
  for (const f of ['deploy/Dockerfile.cpu', 'deploy/Dockerfile.gpu']) for (const st of stagesOf(f).slice(-1)) for (const [k, v] of envOf(st)) add(k, v);
  const compose = obj(parseYaml(read('deploy/compose.yaml'), { merge: true }), 'compose');
  for (const svc of Object.values(obj(compose.services, 'services'))) for (const [k, v] of Object.entries(obj(obj(svc, 'svc').environment, 'env'))) add(k, v);
  const dep = k8s().get('Deployment')!;
  const c = obj(arr(obj(obj(obj(dep.spec, 'spec').template, 'template').spec, 'pod').containers, 'containers')[0], 'container');
  for (const e of arr(c.env, 'env')) add(String(obj(e, 'env').name), obj(e, 'env').value);
  return settings;
}

test('every setting the images and manifests pass is one the server reads, and each value they pass is one it accepts', async () => {
  const { parseConfig } = await import('../server/config.js');
  const settings = passedSettings();
  assert.ok(settings.has('DLM_DEVICE') && settings.has('DLM_MODEL'), 'no settings found in the deployment files');
  // What the server's configuration really reads, by name: a comment naming a setting reads nothing.
  const names = new Set<string>();
  const recording = new Proxy({} as NodeJS.ProcessEnv, { get: (_t, k) => { if (typeof k === 'string') names.add(k); return undefined; } });
  parseConfig([], recording);
  for (const name of settings.keys()) assert.ok(names.has(name), `the server reads no ${name}`);
  for (const [name, values] of settings) {
    for (const v of values) {
      const config = parseConfig([], { [name]: v });
      assert.notEqual(config, 'help');
      if (name === 'PORT') assert.equal((config as { port: number }).port, Number(v));
      if (name === 'DLM_DEVICE') assert.equal((config as { device: string }).device, v);
    }
  }
});

test('the metric the HPA scales on is a gauge that the real server serves on /metrics, where the Deployment says', async () => {
  const { serve } = await import('./helpers/served.js');
  const s = await serve();
  let text: string;
  try {
    const r = await fetch(`${s.base}/metrics`);
    assert.equal(r.status, 200);
    text = await r.text();
  } finally {
    await s.close();
  }
  const adapter = obj(parseYaml(read('deploy/k8s/prometheus-adapter-values.yaml')), 'adapter values');
  const rule = obj(arr(obj(adapter.rules, 'rules').custom, 'custom')[0], 'rule');
  const series = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{/.exec(String(rule.seriesQuery))?.[1];
  assert.ok(series, `seriesQuery ${String(rule.seriesQuery)} names no series`);
  assert.match(text, new RegExp(`^# TYPE ${series} gauge$`, 'm'), `/metrics serves no gauge ${series}`);
  assert.match(text, new RegExp(`^${series}\\{[^}]*\\} \\d`, 'm'), `/metrics has no sample of ${series}`);
  // The adapter's rename matches that series, and the HPA asks for what it renames it to.
  const name = obj(rule.name, 'rule.name');
  assert.match(series, new RegExp(String(name.matches)));
  const hpa = obj(k8s().get('HorizontalPodAutoscaler')!.spec, 'hpa.spec');
  assert.equal(obj(obj(obj(arr(hpa.metrics, 'metrics')[0], 'metric').pods, 'pods').metric, 'pods.metric').name, name.as);
  // Prometheus scrapes the path and port that serve it.
  const dep = k8s().get('Deployment')!;
  const tpl = obj(obj(dep.spec, 'spec').template, 'template');
  const ann = obj(obj(tpl.metadata, 'metadata').annotations, 'annotations');
  assert.equal(ann['prometheus.io/path'], '/metrics');
  assert.equal(ann['prometheus.io/port'], String(PORT));
  const pm = manifests().find((m) => m.o.kind === 'PodMonitor')!.o;
  const ep = obj(arr(obj(pm.spec, 'spec').podMetricsEndpoints, 'endpoints')[0], 'endpoint');
  assert.equal(ep.path, '/metrics');
  const ports = arr(obj(arr(obj(tpl.spec, 'pod').containers, 'containers')[0], 'container').ports, 'ports').map((p) => obj(p, 'port'));
  assert.ok(ports.some((p) => p.name === ep.port && p.containerPort === PORT), `PodMonitor port ${String(ep.port)} is not the served port`);
});
