// The audit log as it happens (from the event stream), and the long operations under way:
// node drains and migrations, with their progress.
import { useFleet } from './App.js';
import type { Fleet } from './fleet.js';
import { NodeDrain } from './Nodes.js';

export function Activity({ fleet }: { fleet: Fleet }) {
  useFleet(fleet);
  const draining = fleet.list('Node').filter((n) => n.spec.drain);
  const moving = fleet
    .list('Migration')
    .filter((m) => !['Succeeded', 'Failed', 'Cancelled'].includes(m.status?.phase));
  const events = [...fleet.events].reverse();
  return (
    <div className="activity">
      <section aria-labelledby="ops">
        <h1 id="ops">Under way</h1>
        {!draining.length && !moving.length && <p>No drains or migrations under way.</p>}
        <ul>
          {draining.map((n) => (
            <li key={`${n.metadata.provider}/${n.metadata.name}`}>
              Node {n.metadata.provider}/{n.metadata.name}:<NodeDrain fleet={fleet} node={n} />
            </li>
          ))}
          {moving.map((m) => {
            const p = m.status?.progress ?? {};
            const total = p.ramTotal ?? p.diskTotal ?? 0;
            const done = p.ramTotal !== undefined ? (p.ramTransferred ?? 0) : (p.diskDone ?? 0);
            return (
              <li key={`${m.metadata.project}/${m.metadata.name}`}>
                Migration {m.metadata.project}/{m.metadata.name} ({m.spec.instance}): {m.status?.phase}{' '}
                <progress max={Math.max(1, total)} value={done} aria-label={`migration ${m.metadata.name}`} />
              </li>
            );
          })}
        </ul>
      </section>
      <section aria-labelledby="feed">
        <h2 id="feed">Activity</h2>
        <ol className="feed" aria-live="polite" data-testid="feed">
          {events.map((e) => (
            <li key={e.seq}>
              <time dateTime={e.time}>{new Date(e.time).toLocaleTimeString()}</time>{' '}
              <strong>{e.actor}</strong> {e.action} {e.kind} {e.parent ? `${e.parent}/` : ''}
              {e.name}
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}
