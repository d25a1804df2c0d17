// The audit log as it happens (from the event stream), and the long operations under way:
// node drains and migrations, with their progress.
import { useEffect, useState } from 'react';
import type { paths } from '../../src/api/client/index.js';
import { useFleet } from './App.js';
import { answer } from './api.js';
import { mib } from './derive.js';
import type { Fleet } from './fleet.js';
import { NodeDrain } from './Nodes.js';
import { MigrationProgress } from './Workloads.js';

type ExportJob =
  paths['/v1/projects/{project}/exports']['get']['responses'][200]['content']['application/json']['items'][number];

/** Projects whose exports this user may see and start: those it administers. */
function adminProjects(fleet: Fleet): string[] {
  return fleet
    .list('Project')
    .map((p) => p.metadata.name)
    .filter((p) => fleet.adminsProject(p));
}

/**
 * Exports of the projects one administers, read every 3 s while the page is open (exports
 * live in the control plane's memory, not in the change stream).
 */
function useExports(fleet: Fleet, projects: string[]): [ExportJob[], () => void] {
  const [jobs, setJobs] = useState<ExportJob[]>([]);
  const [tick, setTick] = useState(0);
  const key = projects.join();
  // biome-ignore lint/correctness/useExhaustiveDependencies: key stands for projects; tick asks for a read now
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const read = async () => {
      const all = await Promise.all(
        projects.map((project) =>
          answer(fleet.api.client.GET('/v1/projects/{project}/exports', { params: { path: { project } } }))
            .then((r) => r.items)
            .catch(() => [] as ExportJob[]),
        ),
      );
      if (stopped) return;
      setJobs(all.flat().sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
      timer = setTimeout(read, 3000);
    };
    void read();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [fleet, key, tick]);
  return [jobs, () => setTick((t) => t + 1)];
}

export function Activity({ fleet }: { fleet: Fleet }) {
  useFleet(fleet);
  const draining = fleet.list('Node').filter((n) => n.spec.drain);
  const moving = fleet
    .list('Migration')
    .filter((m) => !['Succeeded', 'Failed', 'Cancelled'].includes(m.status?.phase));
  const events = [...fleet.events].reverse();
  const projects = adminProjects(fleet);
  const [jobs, reread] = useExports(fleet, projects);
  const [exportError, setExportError] = useState<string>();
  const startExport = async (project: string) => {
    setExportError(undefined);
    try {
      await answer(
        fleet.api.client.POST('/v1/projects/{project}/exports', { params: { path: { project } } }),
      );
      reread();
    } catch (err) {
      setExportError(`export of ${project}: ${(err as Error).message}`);
    }
  };
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
          {moving.map((m) => (
            <li key={`${m.metadata.project}/${m.metadata.name}`}>
              Migration {m.metadata.project}/{m.metadata.name}: <MigrationProgress m={m} />
            </li>
          ))}
        </ul>
      </section>
      {projects.length > 0 && (
        <section aria-labelledby="exports">
          <h2 id="exports">Exports</h2>
          <p>
            A project in open formats (Data Act): its disks, images, manifests and history in one signed
            archive. Download a ready one with <code>continuum export project NAME -o FILE</code>, or from the
            API path shown.
          </p>
          <p className="actions">
            {projects.map((p) => (
              <button key={p} type="button" onClick={() => startExport(p)}>
                Export {p}
              </button>
            ))}
          </p>
          {exportError && (
            <p className="error" role="alert">
              {exportError}
            </p>
          )}
          <ul data-testid="exports">
            {jobs.map((j) => (
              <li key={j.id}>
                {j.project} · {j.phase}{' '}
                {j.phase === 'Gathering' && (
                  <>
                    <progress
                      max={Math.max(1, j.progress.disksTotal)}
                      value={j.progress.disksDone}
                      aria-label={`export ${j.id} of ${j.project}`}
                    />{' '}
                    disks {j.progress.disksDone} of {j.progress.disksTotal} (
                    {mib(Math.round(j.progress.bytesDone / 1048576))} of the current one)
                  </>
                )}
                {j.phase === 'Ready' && (
                  <>
                    {mib(Math.round((j.size ?? 0) / 1048576))}, {j.files} files —{' '}
                    <code>
                      GET /v1/projects/{j.project}/exports/{j.id}/bundle
                    </code>
                  </>
                )}
                {j.phase === 'Failed' && <span className="error"> {j.message}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
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
