// A node's drain, as progress (replicas moved of those it held when the drain was first
// seen), and the buttons to drain it or make it schedulable again.
import { useState } from 'react';
import { derive } from './derive.js';
import type { Fleet, Obj } from './fleet.js';

const drainStart = new Map<string, number>();

export function NodeDrain({ fleet, node }: { fleet: Fleet; node: Obj }) {
  if (!node.spec.drain) {
    drainStart.delete(`${node.metadata.provider}/${node.metadata.name}`);
    return null;
  }
  const key = `${node.metadata.provider}/${node.metadata.name}`;
  const left = derive(fleet).instancesOnNode.get(key)?.length ?? 0;
  const start = Math.max(drainStart.get(key) ?? left, left);
  drainStart.set(key, start);
  return (
    <span className="drain">
      {' '}
      draining <progress max={Math.max(1, start)} value={start - left} aria-label={`drain of ${key}`} />{' '}
      {left ? `${left} replica${left === 1 ? '' : 's'} left` : 'empty'}
    </span>
  );
}

export function NodeActions({ fleet, node }: { fleet: Fleet; node: Obj }) {
  const [error, setError] = useState<string>();
  const provider = node.metadata.provider!;
  if (!fleet.adminsProvider(provider)) return null;
  const act = async (action: 'drain' | 'uncordon') => {
    setError(undefined);
    try {
      await fleet.api.send('POST', `/v1/providers/${provider}/nodes/${node.metadata.name}/${action}`, {});
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <span className="actions">
      {node.spec.drain || node.spec.unschedulable ? (
        <button type="button" onClick={() => act('uncordon')}>
          Uncordon
        </button>
      ) : (
        <button
          type="button"
          onClick={() => act('drain')}
          title={`Drain node ${provider}/${node.metadata.name}`}
        >
          Drain node
        </button>
      )}
      {error && (
        <span className="error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}
