// The facade's pure parts: patch formats, quantities, selectors and the mapping of a
// Deployment's placement terms to Continuum's placement policy.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type DeploymentInput, workloadOf } from './deployments.js';
import { jsonPatch, mergePatch, serverSideApply, strategicMergePatch } from './patch.js';
import { mebibytesOf, vcpusOf } from './quantity.js';
import { fieldSelector, labelSelector, SelectorError } from './selectors.js';

const pod = (over: object = {}) => ({
  containers: [
    {
      name: 'web',
      image: 'busybox',
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ],
    },
  ],
  ...over,
});

describe('patches', () => {
  test('a merge patch merges objects, replaces lists and removes with null', () => {
    assert.deepEqual(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: null, d: 3 }, l: [3] }), {
      a: { b: 1, d: 3 },
      l: [3],
    });
  });

  test('a strategic merge patch merges lists by their key and keeps the order it is told', () => {
    const current = { spec: pod() };
    const patched = strategicMergePatch(current, {
      spec: {
        containers: [
          {
            name: 'web',
            env: [
              { name: 'B', value: 'two' },
              { name: 'C', value: '3' },
              { name: 'A', $patch: 'delete' },
            ],
            '$setElementOrder/env': [{ name: 'C' }, { name: 'B' }],
          },
        ],
      },
    }) as any;
    assert.deepEqual(patched.spec.containers[0].env, [
      { name: 'C', value: '3' },
      { name: 'B', value: 'two' },
    ]);
    assert.equal(patched.spec.containers[0].image, 'busybox');
  });

  test('a JSON patch adds, replaces, removes and tests', () => {
    const doc = { spec: { replicas: 1, l: [1, 2] } };
    assert.deepEqual(
      jsonPatch(doc, [
        { op: 'replace', path: '/spec/replicas', value: 3 },
        { op: 'add', path: '/spec/l/-', value: 3 },
        { op: 'remove', path: '/spec/l/0' },
        { op: 'test', path: '/spec/replicas', value: 3 },
      ]),
      { spec: { replicas: 3, l: [2, 3] } },
    );
    assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/spec/replicas', value: 9 }]), /test failed/);
  });

  test('server-side apply removes what the same manager applied before and no longer does', () => {
    const first = { spec: { replicas: 2, template: { spec: pod() } } };
    const live = { ...first, spec: { ...first.spec, paused: false } };
    const second = {
      spec: {
        template: {
          spec: { containers: [{ name: 'web', image: 'busybox', env: [{ name: 'A', value: '1' }] }] },
        },
      },
    };
    const out = serverSideApply(live, second, first) as any;
    assert.equal(out.spec.replicas, undefined, 'replicas were applied before and are no longer');
    assert.equal(out.spec.paused, false, 'what another writer set stays');
    assert.deepEqual(out.spec.template.spec.containers[0].env, [{ name: 'A', value: '1' }]);
  });
});

test('quantities become whole vCPUs and MiB', () => {
  assert.equal(vcpusOf('500m'), 1);
  assert.equal(vcpusOf('2'), 2);
  assert.equal(vcpusOf('2.5'), 3);
  assert.equal(vcpusOf(4), 4);
  assert.equal(mebibytesOf('64Mi'), 64);
  assert.equal(mebibytesOf('1Gi'), 1024);
  assert.equal(mebibytesOf('128M'), 123);
  assert.equal(mebibytesOf('1e9'), 954);
  assert.equal(vcpusOf('lots'), undefined);
});

test('label and field selectors', () => {
  const l = { app: 'web', tier: 'front' };
  assert.equal(labelSelector('app=web,tier in (front, back)')(l), true);
  assert.equal(labelSelector('app!=web')(l), false);
  assert.equal(labelSelector('!legacy,app')(l), true);
  assert.equal(labelSelector('tier notin (front)')(l), false);
  assert.throws(() => labelSelector('app==(x'), SelectorError);
  const o = { metadata: { name: 'web-0' }, status: { phase: 'Running' } };
  assert.equal(fieldSelector('metadata.name=web-0,status.phase!=Pending')(o), true);
  assert.equal(fieldSelector('spec.nodeName=')(o), true, 'an absent field is the empty string');
});

describe('a Deployment as a workload', () => {
  const dep = (spec: object, annotations?: Record<string, string>): DeploymentInput => ({
    metadata: { name: 'web', ...(annotations ? { annotations } : {}) },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: pod(spec) as any },
    },
  });

  test('node selectors and affinity become residency, sites, providers and pins', () => {
    const { manifest, errors } = workloadOf(
      dep({
        nodeSelector: { 'continuum.eu/provider': 'alpha', disk: 'ssd' },
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'topology.kubernetes.io/region', operator: 'In', values: ['DE', 'FR'] },
                    { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['alpha.fra-1'] },
                  ],
                },
              ],
            },
          },
        },
      }),
      'shop',
    );
    assert.deepEqual(errors, []);
    const spec = (manifest as any).spec;
    assert.deepEqual(spec.placement, {
      providers: { allow: ['alpha'] },
      nodeSelector: { disk: 'ssd' },
      countries: ['DE', 'FR'],
      sites: ['alpha/fra-1'],
    });
    assert.equal(spec.kind, 'container');
    assert.deepEqual(spec.container.env, { A: '1', B: '2' });
    assert.equal(spec.replicas, 3);
  });

  test('the continuum.eu/placement annotation carries a whole policy; a rule said twice is refused', () => {
    const ok = workloadOf(
      dep({}, { 'continuum.eu/placement': 'spread: {across: provider}\njurisdiction: EU' }),
      'shop',
    );
    assert.deepEqual(ok.errors, []);
    assert.deepEqual((ok.manifest as any).spec.placement, {
      spread: { across: 'provider' },
      jurisdiction: 'EU',
    });
    const twice = workloadOf(
      dep(
        { nodeSelector: { 'topology.kubernetes.io/region': 'DE' } },
        { 'continuum.eu/placement': '{"countries": ["FR"]}' },
      ),
      'shop',
    );
    assert.match(
      twice.errors[0]!.message,
      /sets placement.countries, which the continuum.eu\/placement annotation sets too/,
    );
    const bad = workloadOf(dep({}, { 'continuum.eu/placement': '{"countrys": ["FR"]}' }), 'shop');
    assert.equal(bad.errors[0]!.path, 'metadata.annotations[continuum.eu/placement]');
    assert.match(bad.errors[0]!.message, /unknown field 'countrys'/);
  });

  test('what Continuum cannot honour is refused with the field', () => {
    const notIn = workloadOf(
      dep({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'topology.kubernetes.io/region', operator: 'NotIn', values: ['DE'] },
                  ],
                },
              ],
            },
          },
        },
      }),
      'shop',
    );
    assert.match(notIn.errors[0]!.path, /nodeSelectorTerms\[0\]\.matchExpressions\[0\]$/);
    assert.match(notIn.errors[0]!.message, /NotIn on topology.kubernetes.io\/region is not supported/);
    const two = workloadOf(
      dep({ containers: [pod().containers[0], { name: 'side', image: 'busybox' }] }),
      'shop',
    );
    assert.match(two.errors[0]!.message, /one container per pod; 2 given/);
    const mismatch = dep({});
    mismatch.spec.selector.matchLabels = { app: 'other' };
    assert.match(workloadOf(mismatch, 'shop').errors[0]!.message, /selector does not match template labels/);
  });
});
