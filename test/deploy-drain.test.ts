// The deployment files give a draining server the time it asks for: the orchestrator's kill
// comes only after the preStop wait, the whole drain and a margin for what it ended to answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_DRAIN_SECONDS } from '../server/config.js';
import { ROOT } from './helpers/spawned-server.js';

/** What the drain may need after its deadline: ended work answering (3 s) and the engine's close (5 s at most). */
const MARGIN_S = 8;

interface Container {
  env?: { name: string; value?: string }[];
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
}

test('Kubernetes: terminationGracePeriodSeconds covers the preStop sleep, DLM_DRAIN_SECONDS and a margin', () => {
  const dep = parseYaml(readFileSync(join(ROOT, 'deploy/k8s/deployment.yaml'), 'utf8')) as { spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } } } };
  const pod = dep.spec.template.spec;
  const c = pod.containers[0]!;
  const drain = Number(c.env?.find((e) => e.name === 'DLM_DRAIN_SECONDS')?.value ?? DEFAULT_DRAIN_SECONDS);
  const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
  assert.ok(preStop > 0, 'a preStop sleep lets endpoints forget the pod before it stops admitting');
  assert.ok(pod.terminationGracePeriodSeconds >= preStop + drain + MARGIN_S, `grace ${pod.terminationGracePeriodSeconds} s < ${preStop} + ${drain} + ${MARGIN_S}`);
});

test('compose: stop_grace_period covers the default drain and a margin', () => {
  const compose = parseYaml(readFileSync(join(ROOT, 'deploy/compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, { stop_grace_period?: string; environment?: Record<string, string> }> };
  for (const [name, svc] of Object.entries(compose.services)) {
    const grace = Number(/^(\d+)s$/.exec(svc.stop_grace_period ?? '10s')?.[1]);
    const drain = Number(svc.environment?.DLM_DRAIN_SECONDS ?? DEFAULT_DRAIN_SECONDS);
    assert.ok(grace >= drain + MARGIN_S, `${name}: stop_grace_period ${grace} s < ${drain} + ${MARGIN_S}`);
  }
});
