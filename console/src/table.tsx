// A virtualised table: only the rows in view are in the page, so a list of 10,000 nodes
// scrolls as smoothly as one of ten. Click a heading to sort; type to filter.
import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, type ReactNode, useMemo, useRef, useState } from 'react';

export interface Column<T> {
  key: string;
  label: string;
  value: (row: T) => string | number;
  render?: (row: T) => ReactNode;
  width?: string;
}

export function VirtualTable<T>(props: {
  rows: T[];
  columns: Column<T>[];
  rowKey: (row: T) => string;
  label: string;
  onRange?: (visible: T[]) => void;
}) {
  const [sort, setSort] = useState<{ key: string; dir: 1 | -1 }>();
  const [query, setQuery] = useState('');
  const scroller = useRef<HTMLTableSectionElement>(null);
  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    const filtered = q
      ? props.rows.filter((r) => props.columns.some((c) => String(c.value(r)).toLowerCase().includes(q)))
      : props.rows;
    const col = sort && props.columns.find((c) => c.key === sort.key);
    if (!col || !sort) return filtered;
    return [...filtered].sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      return (
        (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) *
        sort.dir
      );
    });
  }, [props.rows, props.columns, query, sort]);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 34,
    overscan: 12,
  });
  const items = virtual.getVirtualItems();
  const visibleRows = items.map((i) => rows[i.index]!).filter(Boolean);
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  // Tell the parent which rows show (e.g. to fetch their sparklines), once per range.
  const rangeKey = `${first}:${last}:${rows.length}:${sort?.key}:${sort?.dir}:${query}`;
  const lastRange = useRef('');
  if (props.onRange && lastRange.current !== rangeKey) {
    lastRange.current = rangeKey;
    queueMicrotask(() => props.onRange?.(visibleRows));
  }
  const template = props.columns.map((c) => c.width ?? '1fr').join(' ');

  return (
    <div className="vtable">
      <div className="vtable-tools">
        <input
          type="search"
          placeholder={`Filter ${props.label}…`}
          aria-label={`Filter ${props.label}`}
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <span data-testid="row-count">
          {rows.length} of {props.rows.length}
        </span>
      </div>
      <table aria-label={props.label} aria-rowcount={rows.length + 1}>
        <thead>
          <tr className="vrow head" style={{ gridTemplateColumns: template }}>
            {props.columns.map((c) => (
              <th
                key={c.key}
                scope="col"
                aria-sort={sort?.key === c.key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}
              >
                <button
                  type="button"
                  onClick={() =>
                    setSort(
                      sort?.key === c.key
                        ? { key: c.key, dir: sort.dir === 1 ? -1 : 1 }
                        : { key: c.key, dir: 1 },
                    )
                  }
                >
                  {c.label}
                  {sort?.key === c.key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        {/* The body scrolls (keyboard too: it takes focus); only the rows in view are in the page. */}
        <tbody
          className="vbody"
          ref={scroller}
          // biome-ignore lint/a11y/noNoninteractiveTabindex: the scrolling body must take focus to scroll by keyboard
          tabIndex={0}
          data-testid="vbody"
        >
          <tr className="spacer" style={{ height: virtual.getTotalSize() }} />
          {items.map((i) => {
            const row = rows[i.index]!;
            return (
              <Row
                key={props.rowKey(row)}
                row={row}
                index={i.index}
                start={i.start}
                columns={props.columns}
                template={template}
              />
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A row renders again only when its object, its place or the columns change (not on every scrolled frame). */
const Row = memo(function Row<T>(props: {
  row: T;
  index: number;
  start: number;
  columns: Column<T>[];
  template: string;
}) {
  return (
    <tr
      aria-rowindex={props.index + 2}
      className="vrow"
      style={{ gridTemplateColumns: props.template, transform: `translateY(${props.start}px)` }}
    >
      {props.columns.map((c) => (
        <td key={c.key}>{c.render ? c.render(props.row) : c.value(props.row)}</td>
      ))}
    </tr>
  );
}) as <T>(props: {
  row: T;
  index: number;
  start: number;
  columns: Column<T>[];
  template: string;
}) => ReactNode;

/** CPU (solid) and memory (dashed) use over the last minutes, 0–100 %. */
export function Sparkline({
  samples,
}: {
  samples: readonly (readonly [number, number, number])[] | undefined;
}) {
  if (!samples?.length) return <span className="muted">—</span>;
  const w = 90;
  const h = 22;
  const line = (i: 1 | 2) =>
    samples
      .map(
        (s, n) =>
          `${((n / Math.max(1, samples.length - 1)) * w).toFixed(1)},${(h - (s[i] / 100) * h).toFixed(1)}`,
      )
      .join(' ');
  const last = samples[samples.length - 1]!;
  return (
    <svg
      className="spark"
      width={w}
      height={h}
      role="img"
      aria-label={`CPU ${last[1]} %, memory ${last[2]} %`}
    >
      <title>{`CPU ${last[1]} %, memory ${last[2]} % (last ${samples.length} heartbeats)`}</title>
      <polyline className="cpu" points={line(1)} />
      <polyline className="mem" points={line(2)} />
    </svg>
  );
}
