// A workload's placement explanation in plain words: what the scheduler looked at, what
// it ruled out and why, the best candidates and what decided between them, and which
// replicas break a rule where they run.
import type { Obj } from './fleet.js';

const DIMENSION_WORDS: Record<string, string> = {
  vcpus: 'vCPUs',
  memoryMiB: 'memory',
  diskGiB: 'disk',
  accelerators: 'accelerators',
};

export function Explanation({ workload: w }: { workload: Obj }) {
  const s = w.status ?? {};
  const p = s.placement;
  const e = p?.explanation;
  const pin = w.spec.placement?.node;
  const filtered = Object.entries((e?.filtered ?? {}) as Record<string, number>).sort((a, b) => b[1] - a[1]);
  const exhausted = Object.entries((e?.exhausted ?? {}) as Record<string, number>);
  return (
    <div className="explanation" data-testid="explanation">
      <p>
        {s.readyReplicas ?? 0} of {w.spec.replicas} replica{w.spec.replicas === 1 ? '' : 's'} running (
        {s.phase ?? 'Pending'}).
        {s.message ? ` ${s.message}` : ''}
      </p>
      {pin && (
        <p>
          Pinned to node <strong>{pin}</strong>: the scheduler considers no other node, and migrations and
          drains cannot move it.
        </p>
      )}
      {!p && <p>The scheduler has not tried to place it yet.</p>}
      {p && (
        <>
          <p>
            At {new Date(p.attemptedAt).toLocaleString()} the scheduler placed {p.placed} replica
            {p.placed === 1 ? '' : 's'}
            {p.pending ? ` and could not place ${p.pending}` : ''}.{p.message ? ` ${p.message}` : ''}
          </p>
          {e && (
            <p>
              It looked at {e.nodesEvaluated} node{e.nodesEvaluated === 1 ? '' : 's'}; {e.feasible} met every
              rule and had room.
            </p>
          )}
          {filtered.length > 0 && (
            <>
              <p>Ruled out:</p>
              <ul>
                {filtered.map(([reason, n]) => (
                  <li key={reason}>
                    {n} node{n === 1 ? '' : 's'}: {reason}
                  </li>
                ))}
              </ul>
            </>
          )}
          {exhausted.length > 0 && (
            <p>
              Out of room:{' '}
              {exhausted
                .map(([dim, n]) => `${DIMENSION_WORDS[dim] ?? dim} on ${n} node${n === 1 ? '' : 's'}`)
                .join(', ')}
              .
            </p>
          )}
          {e?.topScores?.length > 0 && (
            <>
              <p>Best candidates (score out of 100, and what made it up):</p>
              <ol>
                {e.topScores.map(
                  (t: { node: string; total: number; scores: Record<string, number>; room?: string }) => (
                    <li key={t.node}>
                      <strong>{t.node}</strong> scored {t.total}:{' '}
                      {Object.entries(t.scores)
                        .map(([k, v]) => `${k} ${v}`)
                        .join(', ')}
                      {t.room ? ` — ${t.room}` : ''}
                    </li>
                  ),
                )}
              </ol>
            </>
          )}
        </>
      )}
      {(s.outOfPolicy ?? []).length > 0 && (
        <>
          <p className="warn">Replicas that break the rules where they run, with nowhere compliant to go:</p>
          <ul>
            {s.outOfPolicy.map((o: { replica: string; node: string; message: string }) => (
              <li key={o.replica}>
                {o.replica} on {o.node}: {o.message}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
