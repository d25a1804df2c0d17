// The map of Europe, drawn offline: country shapes from world-atlas (TopoJSON, in the
// bundle) projected with d3-geo into one SVG. Sites are markers sized by capacity and
// coloured by their nodes' health; markers closer than a cell on screen merge into a
// cluster (click one to zoom in). Wheel or +/- zoom, drag or arrow keys pan.
import { geoAzimuthalEqualArea, geoPath } from 'd3-geo';
import {
  type KeyboardEvent,
  type PointerEvent,
  type ReactNode,
  useEffect,
  useMemo,
  useRef,
  useState,
  type WheelEvent,
} from 'react';
import { feature } from 'topojson-client';
import world from 'world-atlas/countries-50m.json';

export interface SiteMarker {
  key: string;
  label: string;
  latitude: number;
  longitude: number;
  /** Relative size (e.g. vCPUs); 0 draws the smallest marker. */
  capacity: number;
  health: 'ready' | 'degraded' | 'down' | 'empty' | 'unknown';
  /** Highlighted (e.g. runs a replica of the workload shown). */
  highlight?: boolean;
}
export interface MapLine {
  key: string;
  from: { latitude: number; longitude: number };
  to: { latitude: number; longitude: number };
  label: string;
  /** Breaks its limit. */
  bad?: boolean;
}
export interface MapPoint {
  key: string;
  label: string;
  latitude: number;
  longitude: number;
}

const WIDTH = 960;
const HEIGHT = 720;
const CELL = 34;

const projection = geoAzimuthalEqualArea()
  .rotate([-12, -52])
  .fitExtent(
    [
      [10, 10],
      [WIDTH - 10, HEIGHT - 10],
    ],
    // The corners of Europe (Iceland and the Canaries to Cyprus, Crete to the North Cape).
    {
      type: 'MultiPoint',
      coordinates: [
        [-24, 64],
        [-16, 35],
        [34, 34],
        [32, 70],
        [10, 71],
      ],
    },
  );
const countries = feature(world as any, (world as any).objects.countries) as unknown as {
  features: { id: string; geometry: unknown }[];
};
const shapes = (() => {
  const path = geoPath(projection);
  return countries.features.map((f) => ({ id: f.id, d: path(f as any) ?? '' })).filter((s) => s.d);
})();

export const HEALTH_LABEL: Record<SiteMarker['health'], string> = {
  ready: 'all nodes ready',
  degraded: 'some nodes suspect or down',
  down: 'no node ready',
  empty: 'no nodes',
  unknown: 'node health not visible to you',
};

interface View {
  k: number;
  x: number;
  y: number;
}
interface Cluster {
  key: string;
  x: number;
  y: number;
  sites: SiteMarker[];
}

export function EuropeMap(props: {
  sites: SiteMarker[];
  lines?: MapLine[];
  points?: MapPoint[];
  selected?: string;
  onSelect?: (key: string) => void;
  label: string;
  /** Zoom to show these places (when they change), instead of all of Europe. */
  fit?: { latitude: number; longitude: number }[];
  children?: ReactNode;
}) {
  const [view, setView] = useState<View>({ k: 1, x: 0, y: 0 });
  const fitKey = (props.fit ?? []).map((p) => `${p.latitude},${p.longitude}`).join(';');
  // biome-ignore lint/correctness/useExhaustiveDependencies: fitKey stands for props.fit
  useEffect(() => {
    if (props.fit?.length) setView(fitView(props.fit));
  }, [fitKey]);
  const svg = useRef<SVGSVGElement>(null);
  const drag = useRef<{ x: number; y: number; moved: boolean } | undefined>(undefined);

  const toScreen = (lon: number, lat: number): [number, number] => {
    const p = projection([lon, lat]) ?? [0, 0];
    return [p[0] * view.k + view.x, p[1] * view.k + view.y];
  };
  const zoomAt = (factor: number, cx = WIDTH / 2, cy = HEIGHT / 2) =>
    setView((v) => {
      const k = Math.min(40, Math.max(1, v.k * factor));
      const f = k / v.k;
      return clamp({ k, x: cx - (cx - v.x) * f, y: cy - (cy - v.y) * f });
    });

  const clusters = useMemo(() => {
    const cells = new Map<string, Cluster>();
    for (const s of props.sites) {
      const p = projection([s.longitude, s.latitude]) ?? [0, 0];
      const x = p[0] * view.k + view.x;
      const y = p[1] * view.k + view.y;
      const cell = `${Math.floor(x / CELL)}:${Math.floor(y / CELL)}`;
      const c = cells.get(cell) ?? { key: cell, x: 0, y: 0, sites: [] };
      c.sites.push(s);
      c.x += x;
      c.y += y;
      cells.set(cell, c);
    }
    return [...cells.values()].map((c) => ({ ...c, x: c.x / c.sites.length, y: c.y / c.sites.length }));
  }, [props.sites, view]);
  const maxCapacity = Math.max(1, ...props.sites.map((s) => s.capacity));
  const radius = (capacity: number) => 5 + 11 * Math.sqrt(capacity / maxCapacity);

  const svgPoint = (e: { clientX: number; clientY: number }): [number, number] => {
    const r = svg.current?.getBoundingClientRect();
    if (!r) return [0, 0];
    return [((e.clientX - r.left) * WIDTH) / r.width, ((e.clientY - r.top) * HEIGHT) / r.height];
  };
  const onWheel = (e: WheelEvent) => {
    const [x, y] = svgPoint(e);
    zoomAt(Math.exp(-e.deltaY * 0.0015), x, y);
  };
  const onPointerDown = (e: PointerEvent) => {
    drag.current = { x: e.clientX, y: e.clientY, moved: false };
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d || !(e.buttons & 1)) return;
    const r = svg.current?.getBoundingClientRect();
    const scale = r ? WIDTH / r.width : 1;
    const dx = (e.clientX - d.x) * scale;
    const dy = (e.clientY - d.y) * scale;
    if (Math.abs(dx) + Math.abs(dy) < 3 && !d.moved) return;
    d.moved = true;
    d.x = e.clientX;
    d.y = e.clientY;
    setView((v) => clamp({ ...v, x: v.x + dx, y: v.y + dy }));
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.target !== e.currentTarget) return;
    const step = 60;
    const pan = (dx: number, dy: number) => setView((v) => clamp({ ...v, x: v.x + dx, y: v.y + dy }));
    switch (e.key) {
      case '+':
      case '=':
        zoomAt(1.5);
        break;
      case '-':
        zoomAt(1 / 1.5);
        break;
      case 'ArrowLeft':
        pan(step, 0);
        break;
      case 'ArrowRight':
        pan(-step, 0);
        break;
      case 'ArrowUp':
        pan(0, step);
        break;
      case 'ArrowDown':
        pan(0, -step);
        break;
      case '0':
        setView({ k: 1, x: 0, y: 0 });
        break;
      default:
        return;
    }
    e.preventDefault();
  };
  const clickCluster = (c: Cluster) => {
    if (drag.current?.moved) return;
    if (c.sites.length === 1) props.onSelect?.(c.sites[0]!.key);
    else zoomAt(2.5, c.x, c.y);
  };

  return (
    <div className="map">
      <svg
        ref={svg}
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="application"
        aria-roledescription="map"
        aria-label={`${props.label}: +/- zoom, arrow keys pan, 0 shows all, Tab goes through the sites`}
        // biome-ignore lint/a11y/noNoninteractiveTabindex: the map (role application) takes keys to zoom and pan
        tabIndex={0}
        onWheel={onWheel}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onKeyDown={onKey}
        data-zoom={view.k.toFixed(2)}
      >
        <rect className="sea" width={WIDTH} height={HEIGHT} />
        <g transform={`translate(${view.x},${view.y}) scale(${view.k})`}>
          {shapes.map((s) => (
            <path key={s.id} className="country" d={s.d} />
          ))}
        </g>
        {(props.lines ?? []).map((l) => {
          const [x1, y1] = toScreen(l.from.longitude, l.from.latitude);
          const [x2, y2] = toScreen(l.to.longitude, l.to.latitude);
          return (
            <g key={l.key} className={l.bad ? 'rtt bad' : 'rtt'}>
              <line x1={x1} y1={y1} x2={x2} y2={y2} />
              <text x={(x1 + x2) / 2} y={(y1 + y2) / 2 - 4}>
                {l.label}
              </text>
            </g>
          );
        })}
        {(props.points ?? []).map((p) => {
          const [x, y] = toScreen(p.longitude, p.latitude);
          return (
            <g key={p.key} className="user-point">
              <rect x={x - 5} y={y - 5} width={10} height={10} />
              <text x={x + 8} y={y + 4}>
                {p.label}
              </text>
            </g>
          );
        })}
        {clusters.map((c) => {
          const one = c.sites.length === 1 ? c.sites[0] : undefined;
          const health = worst(c.sites);
          const r = one ? radius(one.capacity) : 10 + Math.min(12, Math.sqrt(c.sites.length) * 3);
          const selected = one && one.key === props.selected;
          const highlight = c.sites.some((s) => s.highlight);
          const name = one
            ? `${one.label}: ${HEALTH_LABEL[one.health]}`
            : `${c.sites.length} sites (${c.sites.map((s) => s.label).join(', ')}); click to zoom in`;
          return (
            // biome-ignore lint/a11y/useSemanticElements: an SVG marker cannot be a <button>
            <g
              key={one ? one.key : `cluster:${c.key}`}
              className={`marker ${health}${selected ? ' selected' : ''}${highlight ? ' highlight' : ''}`}
              transform={`translate(${c.x},${c.y})`}
              role="button"
              tabIndex={0}
              aria-label={name}
              data-site={one?.key}
              data-sites={c.sites.map((s) => s.key).join(' ')}
              data-cluster={one ? undefined : c.sites.length}
              onClick={() => clickCluster(c)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  clickCluster(c);
                }
              }}
            >
              <title>{name}</title>
              <circle r={r} />
              {one?.highlight && (
                <text className="site-label" x={r + 4} dy="0.35em">
                  {one.label}
                </text>
              )}
              {!one && (
                <text className="count" dy="0.35em">
                  {c.sites.length}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <div className="map-controls">
        <button type="button" onClick={() => zoomAt(1.5)} aria-label="Zoom in">
          +
        </button>
        <button type="button" onClick={() => zoomAt(1 / 1.5)} aria-label="Zoom out">
          −
        </button>
        <button type="button" onClick={() => setView({ k: 1, x: 0, y: 0 })} aria-label="Show all of Europe">
          ⟲
        </button>
      </div>
      {props.children}
    </div>
  );
}

/** The view that shows every place with a margin (a single place: a regional zoom). */
function fitView(places: { latitude: number; longitude: number }[]): View {
  const pts: [number, number][] = places.map((p) => projection([p.longitude, p.latitude]) ?? [0, 0]);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const y0 = Math.min(...ys);
  const y1 = Math.max(...ys);
  const k = Math.max(
    1,
    Math.min(12, (WIDTH * 0.7) / Math.max(x1 - x0, 200), (HEIGHT * 0.7) / Math.max(y1 - y0, 150)),
  );
  return clamp({ k, x: WIDTH / 2 - ((x0 + x1) / 2) * k, y: HEIGHT / 2 - ((y0 + y1) / 2) * k });
}

function clamp(v: View): View {
  const minX = WIDTH - WIDTH * v.k;
  const minY = HEIGHT - HEIGHT * v.k;
  return { k: v.k, x: Math.min(0, Math.max(minX, v.x)), y: Math.min(0, Math.max(minY, v.y)) };
}

const ORDER: SiteMarker['health'][] = ['down', 'degraded', 'empty', 'unknown', 'ready'];
function worst(sites: SiteMarker[]): SiteMarker['health'] {
  let best = ORDER.length - 1;
  for (const s of sites) best = Math.min(best, ORDER.indexOf(s.health));
  return ORDER[best]!;
}
