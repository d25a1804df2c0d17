// The console's shell: sign-in with an API token (or the link `continuum dev` prints),
// then the pages, chosen by the address's #fragment so that a page can be bookmarked.
import { type FormEvent, type ReactElement, useEffect, useState, useSyncExternalStore } from 'react';
import { Activity } from './Activity.js';
import { ApiProblem, makeApi, savedToken, saveToken, tokenFromLink } from './api.js';
import { Fleet, type Whoami } from './fleet.js';
import { Inventory } from './Inventory.js';
import { MapPage } from './MapPage.js';
import { WorkloadCreate, WorkloadDetail, Workloads } from './Workloads.js';

const readRoute = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);

function useRoute(): string[] {
  const [route, setRoute] = useState(readRoute);
  useEffect(() => {
    const on = () => setRoute(readRoute());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function useFleet(fleet: Fleet): number {
  return useSyncExternalStore(fleet.subscribe, fleet.getVersion);
}

function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(() => localStorage.getItem('continuum.theme') ?? 'auto');
  useEffect(() => {
    localStorage.setItem('continuum.theme', theme);
    const system = matchMedia('(prefers-color-scheme: dark)');
    const apply = () => {
      const dark = theme === 'dark' || (theme === 'auto' && system.matches);
      document.documentElement.dataset.theme = dark ? 'dark' : 'light';
    };
    apply();
    system.addEventListener('change', apply);
    return () => system.removeEventListener('change', apply);
  }, [theme]);
  const next = () => setTheme((t) => (t === 'auto' ? 'dark' : t === 'dark' ? 'light' : 'auto'));
  return [theme, next];
}

export function App() {
  const [fleet, setFleet] = useState<Fleet>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [theme, nextTheme] = useTheme();

  const signIn = async (token: string) => {
    setBusy(true);
    setError(undefined);
    const api = makeApi(token.trim());
    try {
      const me = (await api.get('/v1/whoami')) as Whoami;
      saveToken(token.trim());
      const f = new Fleet(api, me);
      setFleet(f);
      await f.start();
    } catch (err) {
      saveToken(undefined);
      setFleet(undefined);
      setError(
        err instanceof ApiProblem && err.status === 401
          ? `This token is not accepted: ${err.message}.`
          : (err as Error).message,
      );
    } finally {
      setBusy(false);
    }
  };
  // Once, on load: a sign-in link or the token kept from before.
  // biome-ignore lint/correctness/useExhaustiveDependencies: signIn changes every render; this runs once
  useEffect(() => {
    const t = tokenFromLink() ?? savedToken();
    if (t) void signIn(t);
  }, []);
  useEffect(() => () => fleet?.stop(), [fleet]);

  if (!fleet)
    return <SignIn onSubmit={signIn} error={error} busy={busy} theme={theme} nextTheme={nextTheme} />;
  return (
    <Shell
      fleet={fleet}
      theme={theme}
      nextTheme={nextTheme}
      onSignOut={() => {
        fleet.stop();
        saveToken(undefined);
        setFleet(undefined);
      }}
    />
  );
}

function SignIn(props: {
  onSubmit: (token: string) => void;
  error?: string;
  busy: boolean;
  theme: string;
  nextTheme: () => void;
}) {
  const [token, setToken] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (token.trim()) props.onSubmit(token);
  };
  return (
    <main className="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Continuum</h1>
        <p>
          Sign in with an API token. `continuum token create` issues one; `continuum dev` prints a ready link.
        </p>
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={props.error ? 'signin-error' : undefined}
          // biome-ignore lint/a11y/noAutofocus: the only field of the page
          autoFocus
        />
        {props.error && (
          <p id="signin-error" className="error" role="alert">
            {props.error}
          </p>
        )}
        <button type="submit" disabled={props.busy}>
          {props.busy ? 'Signing in…' : 'Sign in'}
        </button>
        <button type="button" className="link" onClick={props.nextTheme}>
          Theme: {props.theme}
        </button>
      </form>
    </main>
  );
}

const NAV = [
  ['map', 'Map'],
  ['inventory', 'Inventory'],
  ['workloads', 'Workloads'],
  ['activity', 'Activity'],
] as const;

function Shell(props: { fleet: Fleet; theme: string; nextTheme: () => void; onSignOut: () => void }) {
  const { fleet } = props;
  useFleet(fleet);
  const route = useRoute();
  const page = route[0] ?? 'map';
  const role = fleet.me.federationAdmin
    ? 'federation admin'
    : fleet.me.roles.map((r) => `${r.role} ${r.provider ?? r.project ?? ''}`.trim()).join(', ') || 'no roles';
  let body: ReactElement;
  if (page === 'inventory') body = <Inventory fleet={fleet} tab={route[1] ?? 'sites'} />;
  else if (page === 'workloads' && route[1] === 'new') body = <WorkloadCreate fleet={fleet} />;
  else if (page === 'workloads' && route[1] && route[2])
    body = <WorkloadDetail fleet={fleet} project={route[1]} name={route[2]} />;
  else if (page === 'workloads') body = <Workloads fleet={fleet} />;
  else if (page === 'activity') body = <Activity fleet={fleet} />;
  else body = <MapPage fleet={fleet} />;
  return (
    <div className="shell">
      <header>
        <a className="brand" href="#/map">
          Continuum
        </a>
        <nav aria-label="Pages">
          {NAV.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={page === id ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span
          className={`live ${fleet.connected ? 'up' : 'down'}`}
          title="live updates from the event stream"
        >
          {fleet.connected ? '● live' : '○ reconnecting'}
        </span>
        <span className="who" data-testid="who">
          {fleet.me.user} · {role}
        </span>
        <button type="button" className="link" onClick={props.nextTheme} aria-label="Switch colour theme">
          Theme: {props.theme}
        </button>
        <button type="button" className="link" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <main>{body}</main>
    </div>
  );
}
