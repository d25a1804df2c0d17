// Workloads: the list; creating one from a form or from pasted YAML (the server's
// validation errors shown on the field they name); and a workload's page — its replicas
// on the map with lines to its users and their round-trip times, the placement
// explanation in plain words, each instance's console, and its actions.
import { type FormEvent, type ReactElement, useEffect, useState } from 'react';
import { parseAllDocuments } from 'yaml';
import { estimateRttMs } from '../../src/scheduler/latency-model.js';
import { useFleet } from './App.js';
import { ApiProblem, type FieldError } from './api.js';
import { cities, derive, healthOf, mib } from './derive.js';
import { Explanation } from './Explanation.js';
import type { Fleet, Obj } from './fleet.js';
import { EuropeMap, type MapLine, type MapPoint, type SiteMarker } from './map.js';
import { NodeActions } from './Nodes.js';
import { VirtualTable } from './table.js';

const PHASE_CLASS: Record<string, string> = { Running: 'ok', Degraded: 'warn', Failed: 'bad' };

export function Workloads({ fleet }: { fleet: Fleet }) {
  useFleet(fleet);
  const canCreate =
    fleet.me.federationAdmin || fleet.list('Project').some((p) => fleet.canWriteProject(p.metadata.name));
  return (
    <div className="workloads">
      <div className="toolbar">
        <h1>Workloads</h1>
        {canCreate && (
          <a className="button" href="#/workloads/new">
            Create workload
          </a>
        )}
      </div>
      <VirtualTable
        label="workloads"
        rows={fleet.list('Workload')}
        rowKey={(w) => `${w.metadata.project}/${w.metadata.name}`}
        columns={[
          {
            key: 'name',
            label: 'Workload',
            value: (w) => `${w.metadata.project}/${w.metadata.name}`,
            render: (w) => (
              <a href={`#/workloads/${w.metadata.project}/${w.metadata.name}`}>
                {w.metadata.project}/{w.metadata.name}
              </a>
            ),
            width: '2fr',
          },
          { key: 'image', label: 'Image', value: (w) => w.spec.image },
          {
            key: 'phase',
            label: 'Phase',
            value: (w) => w.status?.phase ?? '',
            render: (w) => (
              <span className={`phase ${PHASE_CLASS[w.status?.phase] ?? ''}`}>{w.status?.phase}</span>
            ),
          },
          {
            key: 'ready',
            label: 'Running',
            value: (w) => w.status?.readyReplicas ?? 0,
            render: (w) => `${w.status?.readyReplicas ?? 0}/${w.spec.replicas}`,
            width: '7em',
          },
          {
            key: 'size',
            label: 'Size',
            value: (w) => w.spec.resources.vcpus,
            render: (w) => `${w.spec.resources.vcpus} vCPU · ${mib(w.spec.resources.memoryMiB)}`,
          },
        ]}
      />
    </div>
  );
}

/** Puts each error on the field whose path it names; the rest go above the form. */
function splitErrors(err: unknown): { fields: Map<string, string>; general: string[] } {
  const fields = new Map<string, string>();
  const general: string[] = [];
  if (err instanceof ApiProblem && err.details.length) {
    for (const d of err.details) {
      const path = d.path.replace(/\[(\d+)\]/g, '.$1');
      if (FORM_PATHS.has(path)) fields.set(path, d.message);
      else general.push(`${d.path}: ${d.message}`);
    }
    if (!general.length && !fields.size) general.push(err.message);
  } else general.push((err as Error).message);
  return { fields, general };
}

const FORM_PATHS = new Set([
  'metadata.name',
  'spec.image',
  'spec.replicas',
  'spec.resources.vcpus',
  'spec.resources.memoryMiB',
  'spec.resources.diskGiB',
  'spec.placement.countries',
  'spec.placement.countries.0',
  'spec.placement.minSovereignty',
  'spec.placement.latency.0.city',
  'spec.placement.latency.0.maxRttMs',
  'spec.placement.spread.across',
  'spec.userData',
  'spec.kind',
  'spec.ports.0.guest',
]);

export function WorkloadCreate({ fleet }: { fleet: Fleet }) {
  useFleet(fleet);
  const [mode, setMode] = useState<'form' | 'yaml'>('form');
  const projects = fleet
    .list('Project')
    .map((p) => p.metadata.name)
    .filter((p) => fleet.canWriteProject(p));
  return (
    <div className="create">
      <h1>Create a workload</h1>
      <div role="tablist" className="tabs">
        <button type="button" role="tab" aria-selected={mode === 'form'} onClick={() => setMode('form')}>
          Form
        </button>
        <button type="button" role="tab" aria-selected={mode === 'yaml'} onClick={() => setMode('yaml')}>
          YAML
        </button>
      </div>
      {!projects.length && <p className="error">You may not create workloads in any project.</p>}
      {mode === 'form' ? (
        <CreateForm fleet={fleet} projects={projects} />
      ) : (
        <CreateYaml fleet={fleet} projects={projects} />
      )}
    </div>
  );
}

function Field(props: {
  path: string;
  label: string;
  errors: Map<string, string>;
  children: (id: string, describedBy?: string) => ReactElement;
  hint?: string;
}) {
  const id = `f-${props.path.replace(/\./g, '-')}`;
  const error = props.errors.get(props.path) ?? props.errors.get(`${props.path}.0`);
  return (
    <div className={`field${error ? ' invalid' : ''}`} data-path={props.path}>
      <label htmlFor={id}>{props.label}</label>
      {props.children(id, error ? `${id}-error` : undefined)}
      {props.hint && !error && <small>{props.hint}</small>}
      {error && (
        <small id={`${id}-error`} className="error" role="alert">
          {error}
        </small>
      )}
    </div>
  );
}

/** A one-line text field with its label, hint and the server's error for its path. */
function TextField(props: {
  path: string;
  label: string;
  errors: Map<string, string>;
  hint?: string;
  inputMode?: 'numeric' | 'decimal';
  value: string;
  onChange: (e: { target: { value: string } }) => void;
}) {
  return (
    <Field
      path={props.path}
      label={props.label}
      errors={props.errors}
      {...(props.hint ? { hint: props.hint } : {})}
    >
      {(id, d) => (
        <input
          id={id}
          inputMode={props.inputMode}
          value={props.value}
          onChange={props.onChange}
          aria-describedby={d}
          aria-invalid={!!d}
        />
      )}
    </Field>
  );
}

/** A drop-down with its label and the server's error for its path; options are values or [value, label]. */
function SelectField(props: {
  path: string;
  label: string;
  errors: Map<string, string>;
  value: string;
  onChange: (e: { target: { value: string } }) => void;
  options: readonly (string | readonly [string, string])[];
}) {
  return (
    <Field path={props.path} label={props.label} errors={props.errors}>
      {(id, d) => (
        <select id={id} value={props.value} onChange={props.onChange} aria-describedby={d}>
          {props.options.map((o) => {
            const [value, label] = typeof o === 'string' ? [o, o] : o;
            return (
              <option key={value} value={value}>
                {label}
              </option>
            );
          })}
        </select>
      )}
    </Field>
  );
}

/** The form's number fields for the workload's size: its key, the manifest path, the label. */
const SIZE_FIELDS = [
  ['replicas', 'spec.replicas', 'Replicas'],
  ['vcpus', 'spec.resources.vcpus', 'vCPUs'],
  ['memoryMiB', 'spec.resources.memoryMiB', 'Memory (MiB)'],
] as const;

function CreateForm({ fleet, projects }: { fleet: Fleet; projects: string[] }) {
  const [v, setV] = useState({
    project: projects[0] ?? '',
    kind: 'vm',
    name: '',
    image: '',
    replicas: '1',
    vcpus: '1',
    memoryMiB: '512',
    diskGiB: '',
    countries: '',
    minSovereignty: '',
    city: '',
    maxRttMs: '',
    spread: '',
    userData: '',
    port: '',
  });
  const [images, setImages] = useState<{ name: string; oci: boolean }[]>([]);
  const container = v.kind === 'container';
  const fitting = images.filter((i) => i.oci === container).map((i) => i.name);
  const [errors, setErrors] = useState<{ fields: Map<string, string>; general: string[] }>({
    fields: new Map(),
    general: [],
  });
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!v.project) return;
    fleet.api
      .listAll<Obj>(`/v1/projects/${v.project}/images`)
      .then((list) => setImages(list.map((i) => ({ name: i.metadata.name, oci: i.spec.format === 'oci' }))))
      .catch(() => setImages([]));
  }, [fleet, v.project]);
  // The first image of the kind chosen, until one is typed.
  useEffect(() => {
    const names = images.filter((i) => i.oci === (v.kind === 'container')).map((i) => i.name);
    setV((old) =>
      names.includes(old.image) || (old.image && !images.some((i) => i.name === old.image))
        ? old
        : { ...old, image: names[0] ?? '' },
    );
  }, [images, v.kind]);
  // Opened by its address before the projects loaded: the first one, once they are here.
  useEffect(() => {
    if (!v.project && projects[0]) setV((old) => ({ ...old, project: projects[0]! }));
  }, [v.project, projects]);
  const set = (k: keyof typeof v) => (e: { target: { value: string } }) =>
    setV({ ...v, [k]: e.target.value });
  // Numbers go as numbers when they are numbers; anything else goes as typed, for the server to judge.
  const num = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const placement: Record<string, unknown> = {};
    if (v.countries.trim()) placement.countries = v.countries.split(',').map((c) => c.trim().toUpperCase());
    if (v.minSovereignty) placement.minSovereignty = v.minSovereignty;
    if (v.city.trim()) placement.latency = [{ city: v.city.trim(), maxRttMs: num(v.maxRttMs) }];
    if (v.spread) placement.spread = { across: v.spread };
    const manifest = {
      apiVersion: 'continuum/v1',
      kind: 'Workload',
      metadata: { name: v.name },
      spec: {
        kind: v.kind,
        image: v.image,
        replicas: num(v.replicas),
        resources: {
          vcpus: num(v.vcpus),
          memoryMiB: num(v.memoryMiB),
          ...(!container && v.diskGiB.trim() ? { diskGiB: num(v.diskGiB) } : {}),
        },
        ...(!container && v.userData.trim() ? { userData: v.userData } : {}),
        ...(container && v.port.trim() ? { ports: [{ guest: num(v.port) }] } : {}),
        ...(Object.keys(placement).length ? { placement } : {}),
      },
    };
    setBusy(true);
    setErrors({ fields: new Map(), general: [] });
    try {
      await fleet.api.send('POST', `/v1/projects/${v.project}/workloads`, manifest);
      location.hash = `#/workloads/${v.project}/${v.name}`;
    } catch (err) {
      setErrors(splitErrors(err));
    } finally {
      setBusy(false);
    }
  };
  const f = errors.fields;
  return (
    <form onSubmit={submit} className="form" noValidate aria-label="New workload">
      {errors.general.length > 0 && (
        <div className="error" role="alert">
          {errors.general.map((m) => (
            <p key={m}>{m}</p>
          ))}
        </div>
      )}
      <SelectField
        path="project"
        label="Project"
        errors={f}
        value={v.project}
        onChange={set('project')}
        options={projects}
      />
      <SelectField
        path="spec.kind"
        label="Kind"
        errors={f}
        value={v.kind}
        onChange={set('kind')}
        options={[
          ['vm', 'virtual machine (QEMU)'],
          ['container', 'container (OCI, runc)'],
        ]}
      />
      <TextField
        path="metadata.name"
        label="Name"
        errors={f}
        hint="lower-case letters, digits and '-'"
        value={v.name}
        onChange={set('name')}
      />
      <Field path="spec.image" label="Image" errors={f}>
        {(id, d) => (
          <>
            <input
              id={id}
              list="images"
              value={v.image}
              onChange={set('image')}
              aria-describedby={d}
              aria-invalid={!!d}
            />
            <datalist id="images">
              {fitting.map((i) => (
                <option key={i} value={i} />
              ))}
            </datalist>
          </>
        )}
      </Field>
      {SIZE_FIELDS.map(([key, path, label]) => (
        <TextField
          key={key}
          path={path}
          label={label}
          errors={f}
          inputMode="numeric"
          value={v[key]}
          onChange={set(key)}
        />
      ))}
      {container ? (
        <TextField
          path="spec.ports.0.guest"
          label="Container port (optional)"
          errors={f}
          hint="forwarded on the node, e.g. 8080"
          inputMode="numeric"
          value={v.port}
          onChange={set('port')}
        />
      ) : (
        <TextField
          path="spec.resources.diskGiB"
          label="Disk (GiB, optional)"
          errors={f}
          inputMode="numeric"
          value={v.diskGiB}
          onChange={set('diskGiB')}
        />
      )}
      <fieldset>
        <legend>Placement rules (optional)</legend>
        <TextField
          path="spec.placement.countries"
          label="Only in countries"
          errors={f}
          hint="e.g. DE, FR"
          value={v.countries}
          onChange={set('countries')}
        />
        <SelectField
          path="spec.placement.minSovereignty"
          label="Provider sovereignty at least"
          errors={f}
          value={v.minSovereignty}
          onChange={set('minSovereignty')}
          options={[['', 'any'], 'eu-jurisdiction', 'eu-controlled', 'certified', 'sovereign']}
        />
        <TextField
          path="spec.placement.latency.0.city"
          label="Users in (city)"
          errors={f}
          hint="e.g. Madrid"
          value={v.city}
          onChange={set('city')}
        />
        <TextField
          path="spec.placement.latency.0.maxRttMs"
          label="… within (ms round trip)"
          errors={f}
          inputMode="decimal"
          value={v.maxRttMs}
          onChange={set('maxRttMs')}
        />
        <SelectField
          path="spec.placement.spread.across"
          label="Spread replicas across"
          errors={f}
          value={v.spread}
          onChange={set('spread')}
          options={[['', 'no spread'], 'provider', 'site', 'country']}
        />
      </fieldset>
      {!container && (
        <Field path="spec.userData" label="cloud-init user data (optional)" errors={f}>
          {(id, d) => (
            <textarea id={id} rows={4} value={v.userData} onChange={set('userData')} aria-describedby={d} />
          )}
        </Field>
      )}
      <button type="submit" disabled={busy || !v.project}>
        {busy ? 'Creating…' : 'Create'}
      </button>
    </form>
  );
}

function CreateYaml({ fleet, projects }: { fleet: Fleet; projects: string[] }) {
  const [text, setText] = useState(
    `apiVersion: continuum/v1\nkind: Workload\nmetadata:\n  name: web\n  project: ${projects[0] ?? 'PROJECT'}\nspec:\n  kind: vm\n  image: IMAGE\n  replicas: 1\n  resources: { vcpus: 1, memoryMiB: 512 }\n`,
  );
  const [errors, setErrors] = useState<string[]>([]);
  const [result, setResult] = useState<string>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors([]);
    setResult(undefined);
    const docs = parseAllDocuments(text);
    const parseErrors = docs.flatMap((d, i) => d.errors.map((er) => `document ${i + 1}: ${er.message}`));
    if (parseErrors.length) return setErrors(parseErrors);
    const documents = docs.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
    if (!documents.length) return setErrors(['the text holds no document']);
    try {
      const r = await fleet.api.send('POST', '/v1/apply', { documents });
      setResult(
        r.results
          .map((x: any) => `${x.kind} ${x.project ? `${x.project}/` : ''}${x.name}: ${x.action}`)
          .join('\n'),
      );
      const w = r.results.find((x: any) => x.kind === 'Workload');
      if (w) location.hash = `#/workloads/${w.project}/${w.name}`;
    } catch (err) {
      if (err instanceof ApiProblem && err.details.length) {
        const doc = err.document !== undefined ? `document ${err.document + 1}, ` : '';
        setErrors(err.details.map((d: FieldError) => `${doc}${d.path}: ${d.message}`));
      } else setErrors([(err as Error).message]);
    }
  };
  return (
    <form onSubmit={submit} className="form yaml" aria-label="New workload from YAML">
      <label htmlFor="yaml">Manifests (YAML, several separated by ---)</label>
      <textarea
        id="yaml"
        rows={18}
        spellCheck={false}
        value={text}
        onChange={(e) => setText(e.target.value)}
        aria-invalid={errors.length > 0}
      />
      {errors.length > 0 && (
        <ul className="error" role="alert">
          {errors.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      )}
      {result && <pre>{result}</pre>}
      <button type="submit">Apply</button>
    </form>
  );
}

export function WorkloadDetail({ fleet, project, name }: { fleet: Fleet; project: string; name: string }) {
  useFleet(fleet);
  const d = derive(fleet);
  const w = fleet.objects.Workload.get(`${project}/${name}`);
  const [error, setError] = useState<string>();
  const [openConsole, setOpenConsole] = useState<string>();
  const instances = fleet
    .list('Instance')
    .filter((i) => i.metadata.project === project && i.spec.workload === name)
    .sort((a, b) => a.spec.ordinal - b.spec.ordinal);
  const tenantSites = useReplicaSites(fleet, project, name, instances);
  if (!w)
    return fleet.loaded.has('Workload') ? (
      <p className="error">
        No workload {project}/{name} (deleted, or not visible to you).
      </p>
    ) : (
      <p>Loading…</p>
    );
  const migrations = fleet
    .list('Migration')
    .filter(
      (m) => m.metadata.project === project && instances.some((i) => i.metadata.name === m.spec.instance),
    );
  const writable = fleet.canWriteProject(project);
  const act = async (what: string, fn: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(`${what}: ${(err as Error).message}`);
    }
  };
  const scale = (replicas: number) =>
    act('scale', async () => {
      const fresh = await fleet.api.get(`/v1/projects/${project}/workloads/${name}`);
      await fleet.api.send('PUT', `/v1/projects/${project}/workloads/${name}`, {
        apiVersion: 'continuum/v1',
        kind: 'Workload',
        metadata: { name, ...(fresh.metadata.labels ? { labels: fresh.metadata.labels } : {}) },
        spec: { ...fresh.spec, replicas },
      });
    });

  // The replicas' sites on the map, with a line from each user location to each of them.
  const replicaSites = new Map<string, Obj>();
  const replicasAt = new Map<string, number>();
  for (const i of instances) {
    const siteKey = d.siteOfNode.get(i.spec.node) ?? tenantSites.get(i.metadata.name);
    const st = siteKey ? d.sites.get(siteKey) : undefined;
    if (!st) continue;
    replicaSites.set(st.key, st.site);
    replicasAt.set(st.key, (replicasAt.get(st.key) ?? 0) + 1);
  }
  const markers: SiteMarker[] = [...d.sites.values()]
    .filter((st) => replicaSites.has(st.key))
    .map((st) => ({
      key: st.key,
      label: st.site.spec.displayName ?? st.key,
      latitude: st.site.spec.location.latitude,
      longitude: st.site.spec.location.longitude,
      capacity: 0,
      health: healthOf(st, fleet.seesNodes),
      highlight: replicaSites.has(st.key),
    }));
  const targets = (w.spec.placement?.latency ?? []) as {
    name?: string;
    city?: string;
    latitude?: number;
    longitude?: number;
    maxRttMs: number;
  }[];
  const points: MapPoint[] = [];
  const lines: MapLine[] = [];
  for (const [n, t] of targets.entries()) {
    const c = t.city ? cities.get(t.city.toLowerCase()) : undefined;
    const loc =
      c ??
      (t.latitude !== undefined
        ? { name: t.name ?? `${t.latitude},${t.longitude}`, latitude: t.latitude, longitude: t.longitude! }
        : undefined);
    if (!loc) continue;
    const label = t.name ?? loc.name;
    points.push({ key: `u${n}`, label: `users: ${label}`, latitude: loc.latitude, longitude: loc.longitude });
    for (const [key, s] of replicaSites) {
      const measured = s.status?.measuredRttMs?.[label] as number | undefined;
      const rtt = measured ?? estimateRttMs({ ...s.spec.location, tier: s.spec.tier }, loc);
      lines.push({
        key: `u${n}-${key}`,
        from: loc,
        to: s.spec.location,
        label: `${rtt.toFixed(1)} ms ${measured !== undefined ? 'measured' : 'est.'}`,
        bad: rtt > t.maxRttMs,
      });
    }
  }

  return (
    <div className="detail" data-testid="workload-detail">
      <div className="toolbar">
        <h1>
          {project}/{name}
        </h1>
        <span className={`phase ${PHASE_CLASS[w.status?.phase] ?? ''}`} data-testid="workload-phase">
          {w.status?.phase}
        </span>
        <span data-testid="ready-replicas">
          {w.status?.readyReplicas ?? 0}/{w.spec.replicas} running
        </span>
        {writable && (
          <span className="actions">
            <button type="button" onClick={() => scale(w.spec.replicas + 1)} aria-label="Scale up by one">
              Scale +1
            </button>
            <button
              type="button"
              disabled={w.spec.replicas === 0}
              onClick={() => scale(w.spec.replicas - 1)}
              aria-label="Scale down by one"
            >
              Scale −1
            </button>
            <button
              type="button"
              className="danger"
              onClick={() =>
                confirm(`Delete workload ${project}/${name} and its ${instances.length} instance(s)?`) &&
                act('delete', async () => {
                  await fleet.api.send('DELETE', `/v1/projects/${project}/workloads/${name}`);
                  location.hash = '#/workloads';
                })
              }
            >
              Delete
            </button>
          </span>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="detail-grid">
        <section aria-label="Replicas on the map">
          <EuropeMap
            fit={[...markers, ...points]}
            sites={markers}
            lines={lines}
            points={points}
            label={`Where the replicas of ${name} run`}
          />
        </section>
        <section aria-labelledby="why">
          <h2 id="why">Why there</h2>
          <Explanation workload={w} />
        </section>
      </div>
      {migrations.some((m) => !['Succeeded', 'Failed', 'Cancelled'].includes(m.status?.phase)) && (
        <section aria-label="Migrations in progress">
          <h2>Moving</h2>
          {migrations
            .filter((m) => !['Succeeded', 'Failed', 'Cancelled'].includes(m.status?.phase))
            .map((m) => (
              <p key={m.metadata.name}>
                <MigrationProgress m={m} />
              </p>
            ))}
        </section>
      )}
      <section aria-labelledby="replicas">
        <h2 id="replicas">Replicas</h2>
        <table className="replicas">
          <thead>
            <tr>
              <th>Instance</th>
              <th>Node</th>
              <th>Phase</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {instances.map((i) => (
              <tr key={i.metadata.name} data-instance={i.metadata.name}>
                <td>{i.metadata.name}</td>
                <td>{i.spec.node}</td>
                <td>
                  <span className={`phase ${PHASE_CLASS[i.status?.phase] ?? ''}`}>{i.status?.phase}</span>
                  {i.spec.desired === 'absent' && ' (being removed)'}
                </td>
                <td>
                  <span className="actions">
                    <button
                      type="button"
                      onClick={() =>
                        setOpenConsole(openConsole === i.metadata.name ? undefined : i.metadata.name)
                      }
                    >
                      {openConsole === i.metadata.name ? 'Hide console' : 'Console'}
                    </button>
                    {writable &&
                      (['start', 'stop', 'reboot'] as const).map((a) => (
                        <button
                          key={a}
                          type="button"
                          onClick={() =>
                            act(a, () =>
                              fleet.api.send(
                                'POST',
                                `/v1/projects/${project}/instances/${i.metadata.name}/${a}`,
                                {},
                              ),
                            )
                          }
                        >
                          {a[0]!.toUpperCase() + a.slice(1)}
                        </button>
                      ))}
                    {writable && (
                      <button
                        type="button"
                        onClick={() =>
                          act('migrate', () =>
                            fleet.api.send('POST', `/v1/projects/${project}/migrations`, {
                              apiVersion: 'continuum/v1',
                              kind: 'Migration',
                              metadata: { name: `${i.metadata.name}-${Date.now().toString(36)}` },
                              spec: { instance: i.metadata.name },
                            }),
                          )
                        }
                      >
                        Migrate
                      </button>
                    )}
                    {/* Its node's admins (and federation admins) may drain the node from here. */}
                    {fleet.objects.Node.get(i.spec.node) && (
                      <NodeActions fleet={fleet} node={fleet.objects.Node.get(i.spec.node)!} />
                    )}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {openConsole && <ConsoleLog fleet={fleet} project={project} instance={openConsole} />}
      </section>
    </div>
  );
}

/**
 * Where each replica of a workload is now (instance → PROVIDER/SITE), from the project's
 * residency report: for users who do not see nodes (a tenant), whose sites the node list
 * cannot give. Read again when a replica moves.
 */
function useReplicaSites(fleet: Fleet, project: string, name: string, instances: Obj[]): Map<string, string> {
  const [sites, setSites] = useState(new Map<string, string>());
  const key = instances.map((i) => `${i.metadata.name}@${i.spec.node}`).join();
  useEffect(() => {
    if (fleet.seesNodes || !key) return;
    fleet.api
      .get(`/v1/projects/${project}/residency`, { workload: name })
      .then((r: { stays: { instance: string; provider: string; site: string; to?: string }[] }) =>
        setSites(new Map(r.stays.filter((s) => !s.to).map((s) => [s.instance, `${s.provider}/${s.site}`]))),
      )
      .catch(() => setSites(new Map()));
  }, [fleet, project, name, key]);
  return sites;
}

/** A migration's phase, where from and to, and how far its memory or disk copy is. */
export function MigrationProgress({ m }: { m: Obj }) {
  const p = m.status?.progress ?? {};
  const [done, total] =
    p.ramTotal !== undefined
      ? [p.ramTransferred ?? 0, p.ramTotal]
      : p.diskTotal !== undefined
        ? [p.diskDone ?? 0, p.diskTotal]
        : [0, 0];
  return (
    <span className="migration">
      {m.spec.instance}: {m.status?.phase} {m.status?.from ?? ''} → {m.status?.target ?? '…'}{' '}
      <progress max={Math.max(1, total)} value={done} aria-label={`migration ${m.metadata.name}`} />{' '}
      {total ? `${Math.round((100 * done) / total)} %` : ''}
    </span>
  );
}

/** The serial console, read from where it was left every two seconds while it is open. */
function ConsoleLog({ fleet, project, instance }: { fleet: Fleet; project: string; instance: string }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  useEffect(() => {
    let offset = 0;
    let stopped = false;
    setText('');
    const read = async () => {
      try {
        for (;;) {
          const r = await fleet.api.get(`/v1/projects/${project}/instances/${instance}/console`, {
            offset,
            limit: 65536,
          });
          if (stopped) return;
          setError(undefined);
          if (r.data) setText((t) => (t + r.data).slice(-200_000));
          if (r.next === offset || !r.data) break;
          offset = r.next;
        }
      } catch (err) {
        if (!stopped) setError((err as Error).message);
      }
      if (!stopped) timer = setTimeout(read, 2000);
    };
    let timer = setTimeout(read, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [fleet, project, instance]);
  return (
    <section aria-label={`Console of ${instance}`}>
      <h3>Console of {instance}</h3>
      {error && <p className="error">{error}</p>}
      <pre className="console" data-testid="console-log">
        {text || '(nothing yet)'}
      </pre>
    </section>
  );
}
