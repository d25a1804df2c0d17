// Label selectors (`app=web,tier in (a,b),!legacy`) and field selectors
// (`involvedObject.name=web-0,status.phase!=Running`) over rendered objects.

type Test = (labels: Record<string, string>) => boolean;

export class SelectorError extends Error {}

/** Splits on commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** One requirement of a label selector, or undefined when it is not one. */
function requirement(t: string): Test | undefined {
  const set = /^([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
  if (set) {
    const [, key, op, list] = set as unknown as [string, string, string, string];
    const values = new Set(list.split(',').map((v) => v.trim()));
    return op === 'in' ? (l) => key in l && values.has(l[key]!) : (l) => !(key in l) || !values.has(l[key]!);
  }
  const eq = /^([^\s!=,()]+)\s*(==|=|!=)\s*([^\s,()]*)$/.exec(t);
  if (eq) {
    const [, key, op, value] = eq as unknown as [string, string, string, string];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  const absent = /^!\s*([^\s!=,()]+)$/.exec(t);
  if (absent) return (l) => !(absent[1]! in l);
  const present = /^([^\s!=,()]+)$/.exec(t);
  if (present) return (l) => present[1]! in l;
  return undefined;
}

export function labelSelector(s: string | undefined): Test {
  if (!s?.trim()) return () => true;
  const tests = terms(s).map((t) => {
    const test = requirement(t);
    if (!test) throw new SelectorError(`unable to parse requirement: "${t}"`);
    return test;
  });
  return (l) => tests.every((f) => f(l));
}

function at(obj: unknown, path: string): string | undefined {
  let cur: any = obj;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[p];
  }
  return cur === undefined || cur === null ? undefined : String(cur);
}

export function fieldSelector(s: string | undefined): (obj: unknown) => boolean {
  if (!s?.trim()) return () => true;
  const tests = terms(s).map((t) => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m) throw new SelectorError(`invalid field selector: "${t}"`);
    const [, path, op, value] = m as unknown as [string, string, string, string];
    // An absent field compares as the empty string, as Kubernetes does.
    return op === '!='
      ? (o: unknown) => (at(o, path) ?? '') !== value
      : (o: unknown) => (at(o, path) ?? '') === value;
  });
  return (o) => tests.every((f) => f(o));
}
