// Create, read, update, delete and apply for every kind: validation, authorization,
// optimistic concurrency, quotas and the audit trail, each write in one transaction.
import { canRead, canReadParent, canWrite, listScope, type Principal, refusedChange } from '../auth/index.js';
import {
  type CheckContext,
  type FieldError,
  findKind,
  KINDS,
  type KindDef,
  type Manifest,
  manifestSchema,
  Problem,
  type ResourceObject,
  type RoleBinding,
  validate,
  type WorkloadSpec,
} from '../model/index.js';
import {
  isUniqueViolation,
  type NewResource,
  newUid,
  parseStored,
  Store,
  type StoredResource,
  type StoredText,
} from '../store/index.js';
import { dependentsOf } from './dependents.js';
import { UsageLedger, updateProjectUsage } from './quota.js';
import { canonical, decodeCursor, encodeCursor, eventScopeOf, render, renderText } from './render.js';

export const APPLY_ACTIONS = ['created', 'updated', 'unchanged'] as const;
export type ApplyAction = (typeof APPLY_ACTIONS)[number];

export interface ListOptions {
  parent?: string;
  filters?: Record<string, string>;
  limit?: number;
  cursor?: string;
}

export interface WriteResult {
  object: ResourceObject;
  action: ApplyAction;
}

type WriteMode = 'create' | 'update' | 'apply';

class DryRunRollback extends Error {
  constructor(readonly result: unknown) {
    super('dry run');
  }
}

const MAX_LIST = 1000;

function parentTable(def: KindDef) {
  return def.parent === 'provider' ? 'providers' : 'projects';
}

function label(def: KindDef, parent: string, name: string): string {
  return def.parent ? `${def.kind} '${parent}/${name}'` : `${def.kind} '${name}'`;
}

/**
 * A check of a kind's spec against the state of the system, beyond its own fields (e.g.
 * a Migration's target against the scheduler): errors refuse the write, nothing applied.
 */
export type Admission = (
  tx: Store,
  parent: string,
  name: string,
  spec: any,
  existing: StoredResource | undefined,
) => Promise<FieldError[]>;

/**
 * An apply's new resources not yet written (see settle), all created at `at`: the
 * apply's time, as their results and audit events already say.
 */
interface PendingInserts {
  at: string;
  items: { def: KindDef; input: NewResource; document: number | undefined }[];
}

export class ResourceService {
  /** Admission checks by kind, set by the control plane that owns what they consult. */
  readonly admission = new Map<string, Admission>();

  /** The quota usage changes of each transaction under way (see UsageLedger). */
  private readonly ledgers = new WeakMap<Store, UsageLedger>();
  /** The parents each transaction under way found (see parentExists). */
  private readonly parents = new WeakMap<Store, Set<string>>();
  /** An apply's documents as stored before it wrote any (see prefetch), each read once. */
  private readonly prefetched = new WeakMap<Store, Map<string, StoredResource | undefined>>();
  /**
   * An apply's new resources not yet inserted (see settle): written together, a few
   * statements for hundreds, before anything else the apply reads or writes.
   */
  private readonly pending = new WeakMap<Store, PendingInserts>();

  constructor(readonly store: Store) {}

  /** Runs fn in a transaction; with dryRun everything is checked and then rolled back. */
  async transact<T>(dryRun: boolean, fn: (tx: Store) => Promise<T>): Promise<T> {
    try {
      return await this.store.transaction(async (tx) => {
        // Quota usage is written once, at the end of the outermost write.
        const outer = this.ledgers.get(tx);
        const ledger = outer ?? new UsageLedger();
        this.ledgers.set(tx, ledger);
        const result = await fn(tx);
        if (!outer) {
          this.ledgers.delete(tx);
          await ledger.flush(tx);
        }
        if (dryRun) throw new DryRunRollback(result);
        return result;
      });
    } catch (err) {
      if (err instanceof DryRunRollback) return err.result as T;
      throw err;
    }
  }

  async get(p: Principal, def: KindDef, parent: string, name: string): Promise<ResourceObject> {
    const row = await this.readVisible(this.store, p, def, parent, name);
    return render(def, row);
  }

  /** A read as the API sends it: render's JSON text, the stored document not parsed. */
  async getJson(
    p: Principal,
    def: KindDef,
    parent: string,
    name: string,
  ): Promise<{ json: string; generation: number }> {
    const row = await this.readVisibleText(this.store, p, def, parent, name);
    return { json: renderText(def, row), generation: row.generation };
  }

  /**
   * Providers are public (the catalogue), so hiding one of their nodes is "forbidden";
   * projects are private, so someone else's project is "not found".
   */
  private hiddenParent(p: Principal, def: KindDef, parent: string): Problem {
    if (def.parent === 'provider')
      return new Problem(
        'forbidden',
        `user '${p.user}' may not see the ${def.plural} of provider '${parent}'`,
      );
    return new Problem('parent_not_found', `${def.parent} '${parent}' not found`);
  }

  async readVisible(
    tx: Store,
    p: Principal,
    def: KindDef,
    parent: string,
    name: string,
  ): Promise<StoredResource> {
    return parseStored(await this.readVisibleText(tx, p, def, parent, name));
  }

  private async readVisibleText(
    tx: Store,
    p: Principal,
    def: KindDef,
    parent: string,
    name: string,
  ): Promise<StoredText> {
    if (def.parent && !canReadParent(p, def, parent)) throw this.hiddenParent(p, def, parent);
    const row = await tx.getText(def.plural, parent, name);
    // The spec is parsed only for a rule that reads it (who may see a user).
    const scope = row && listScope(p, def);
    const spec = scope && scope !== 'all' && scope.filter ? JSON.parse(row.spec) : undefined;
    if (!row || !canRead(p, def, parent, name, spec))
      throw new Problem('not_found', `${label(def, parent, name)} not found`);
    return row;
  }

  async list(
    p: Principal,
    def: KindDef,
    opts: ListOptions = {},
  ): Promise<{ items: ResourceObject[]; nextCursor?: string }> {
    return this.page(p, def, opts, (r) => render(def, parseStored(r)));
  }

  /** A page of list as the API sends it: JSON text, the stored documents not parsed. */
  async listJson(p: Principal, def: KindDef, opts: ListOptions = {}): Promise<string> {
    const { items, nextCursor } = await this.page(p, def, opts, (r) => renderText(def, r));
    return `{"items":[${items.join(',')}]${nextCursor ? `,"nextCursor":${JSON.stringify(nextCursor)}` : ''}}`;
  }

  private async page<T>(
    p: Principal,
    def: KindDef,
    opts: ListOptions,
    map: (r: StoredText) => T,
  ): Promise<{ items: T[]; nextCursor?: string }> {
    const limit = Math.min(opts.limit ?? 100, MAX_LIST);
    const after = opts.cursor ? decodeCursor(opts.cursor) : undefined;
    if (opts.cursor && !after)
      throw Problem.invalid([{ path: 'cursor', message: 'is not a cursor this server issued' }]);
    const where: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.filters ?? {})) {
      if (!def.filters.includes(k))
        throw Problem.invalid([{ path: k, message: `${def.plural} cannot be filtered by ${k}` }]);
      where[k] = v;
    }
    let parents: string[] | undefined;
    if (opts.parent !== undefined) {
      if (def.parent && !canReadParent(p, def, opts.parent)) throw this.hiddenParent(p, def, opts.parent);
      parents = [opts.parent];
    }
    // Whether the parent exists is only asked when no row of it was read: a parent with
    // resources cannot be deleted, and the question was a statement of every such list.
    let parentSeen = opts.parent === undefined || !def.parent;
    const scope = listScope(p, def);
    let names: string[] | undefined;
    let filter: ((spec: any, name: string) => boolean) | undefined;
    if (scope !== 'all') {
      if (scope.parents)
        parents = parents ? parents.filter((x) => scope.parents!.includes(x)) : scope.parents;
      names = scope.names;
      filter = scope.filter;
    }
    const items: T[] = [];
    let cursor = after;
    // A post-filter (users) may drop rows, so read on until the page is full; a next
    // cursor is only returned when another visible row exists.
    for (;;) {
      const rows = await this.store.listText(def.plural, {
        parents,
        names,
        where,
        after: cursor,
        limit: limit + 1,
      });
      if (!parentSeen) {
        if (!rows.length && !(await this.store.get(parentTable(def), '', opts.parent!)))
          throw new Problem('parent_not_found', `${def.parent} '${opts.parent}' not found`);
        parentSeen = true;
      }
      for (const r of rows) {
        if (filter && !filter(JSON.parse(r.spec), r.name)) {
          cursor = { parent: r.parent, name: r.name };
          continue;
        }
        if (items.length === limit) return { items, nextCursor: encodeCursor(cursor!) };
        items.push(map(r));
        cursor = { parent: r.parent, name: r.name };
      }
      if (rows.length <= limit) return { items };
    }
  }

  async create(p: Principal, def: KindDef, pathParent: string | undefined, body: unknown, dryRun = false) {
    return this.transact(dryRun, (tx) => this.write(tx, p, def, body, 'create', { parent: pathParent }));
  }

  async update(
    p: Principal,
    def: KindDef,
    target: { parent?: string; name: string },
    body: unknown,
    expectedGeneration?: number,
    dryRun = false,
  ) {
    return this.transact(dryRun, (tx) =>
      this.write(tx, p, def, body, 'update', { ...target, expectedGeneration }),
    );
  }

  async remove(
    p: Principal,
    def: KindDef,
    parent: string,
    name: string,
    expectedGeneration?: number,
  ): Promise<ResourceObject> {
    return this.store.transaction(async (tx) => {
      const row = await this.readVisible(tx, p, def, parent, name);
      const roles = def.kind === 'User' ? { before: row.spec.roles as RoleBinding[] } : undefined;
      if (!canWrite(p, def, 'delete', parent, name, roles))
        throw new Problem('forbidden', `user '${p.user}' may not delete ${label(def, parent, name)}`);
      if (expectedGeneration !== undefined && expectedGeneration !== row.generation)
        throw this.conflict(def, row, expectedGeneration);
      const blockers = await dependentsOf(tx, def, parent, name);
      if (blockers.length)
        throw new Problem(
          'has_dependents',
          `${label(def, parent, name)} still has ${blockers.join(' and ')}; delete them first`,
        );
      if (def.kind === 'User') await this.guardLastAdmin(tx, name, []);
      await tx.delete(def.plural, row.uid);
      if (def.kind === 'User') await tx.deleteTokensOf(name);
      if (def.kind === 'Node') await tx.deleteNodeCredentials(parent, name);
      if (def.kind === 'Workload') await updateProjectUsage(tx, parent, row.spec as WorkloadSpec, undefined);
      const before = render(def, row);
      await tx.appendEvent({
        actor: p.user,
        action: 'delete',
        kind: def.kind,
        parent,
        name,
        ...eventScopeOf(def, parent, name),
        before,
        after: null,
      });
      return before;
    });
  }

  /**
   * Create-or-update of many documents in one transaction: all succeed or none is
   * written. Documents are written in the order given; a Problem carries the index of
   * the document at fault.
   */
  async apply(
    p: Principal,
    documents: readonly unknown[],
    dryRun = false,
    /** More writes in the same transaction, after the documents (an import's image files). */
    then?: (tx: Store) => Promise<void>,
  ): Promise<WriteResult[]> {
    return this.transact(dryRun, async (tx) => {
      const results: WriteResult[] = [];
      await this.prefetch(tx, documents);
      if (documents.length > 1) this.pending.set(tx, { at: new Date().toISOString(), items: [] });
      try {
        for (const [i, doc] of documents.entries()) {
          try {
            const def = this.kindOf(doc);
            results.push(await this.write(tx, p, def, doc, 'apply', { document: i }));
          } catch (err) {
            if (err instanceof Problem) err.document ??= i;
            throw err;
          }
        }
        await this.settle(tx);
      } finally {
        this.pending.delete(tx);
        this.prefetched.delete(tx);
      }
      await then?.(tx);
      return results;
    });
  }

  kindOf(doc: unknown): KindDef {
    if (!doc || typeof doc !== 'object' || Array.isArray(doc))
      throw Problem.invalid([
        { path: '', message: 'a document must be a mapping with kind, metadata and spec' },
      ]);
    const kind = (doc as { kind?: unknown }).kind;
    if (kind === undefined) throw Problem.invalid([{ path: 'kind', message: 'is required' }]);
    const def = typeof kind === 'string' ? findKind(kind) : undefined;
    if (!def || def.kind !== kind) {
      const kinds = KINDS.map((k) => k.kind);
      throw Problem.invalid([
        { path: 'kind', message: `unknown kind ${JSON.stringify(kind)} (one of ${kinds.join(', ')})` },
      ]);
    }
    return def;
  }

  private async write(
    tx: Store,
    p: Principal,
    def: KindDef,
    body: unknown,
    mode: WriteMode,
    target: { parent?: string; name?: string; expectedGeneration?: number; document?: number },
  ): Promise<WriteResult> {
    const schemaErrors = validate(manifestSchema(def), body);
    if (schemaErrors.length) throw Problem.invalid(schemaErrors);
    const m = body as Manifest;
    const name = m.metadata.name;
    if (target.name !== undefined && name !== target.name)
      throw Problem.invalid([
        { path: 'metadata.name', message: `'${name}' does not match '${target.name}' in the URL` },
      ]);
    const parent = this.parentOf(def, m, target.parent);
    if (!def.creatable && mode !== 'update') {
      await this.settle(tx);
      const existing = await tx.get(def.plural, parent, name);
      if (!existing)
        throw new Problem(
          'method_not_allowed',
          `${def.kind} objects are created by the system, not through the API`,
        );
    }
    if (def.parent && !(canReadParent(p, def, parent) && (await this.parentExists(tx, def, parent))))
      throw new Problem('parent_not_found', `${def.parent} '${parent}' not found`);
    const existing = await this.existing(tx, def, parent, name);
    if (existing && mode === 'create')
      throw new Problem('already_exists', `${label(def, parent, name)} already exists`);
    if (!existing && mode === 'update')
      throw new Problem('not_found', `${label(def, parent, name)} not found`);
    if (existing && !canRead(p, def, parent, name, existing.spec))
      throw new Problem('forbidden', `user '${p.user}' may not change ${label(def, parent, name)}`);

    const action = existing ? 'update' : 'create';
    const roles =
      def.kind === 'User'
        ? { before: existing?.spec.roles as RoleBinding[] | undefined, after: m.spec.roles }
        : undefined;
    if (!canWrite(p, def, action, parent, name, roles))
      throw new Problem('forbidden', `user '${p.user}' may not ${action} ${label(def, parent, name)}`);
    const refused = refusedChange(p, def, existing?.spec, m.spec);
    if (refused) throw new Problem('forbidden', `${label(def, parent, name)}: ${refused}`);

    const checkErrors = await this.check(tx, def, m, existing, parent);
    if (checkErrors.length) throw Problem.invalid(checkErrors);

    const expected = target.expectedGeneration ?? m.metadata.generation;
    const labels = m.metadata.labels ?? {};
    const annotations = m.metadata.annotations ?? {};
    const size = Object.entries(annotations).reduce((n, [k, v]) => n + k.length + v.length, 0);
    if (size > 262144)
      throw Problem.invalid([
        { path: 'metadata.annotations', message: `are ${size} bytes in all; at most 262144 (256 KiB)` },
      ]);
    if (existing) {
      if (expected !== undefined && expected !== existing.generation)
        throw this.conflict(def, existing, expected);
      if (
        canonical(existing.spec) === canonical(m.spec) &&
        canonical(existing.labels) === canonical(labels) &&
        canonical(existing.annotations) === canonical(annotations)
      )
        return { object: render(def, existing), action: 'unchanged' };
      await this.settle(tx);
      if (def.kind === 'User') await this.guardLastAdmin(tx, name, m.spec.roles);
      const status = def.onSpecChange ? def.onSpecChange(m.spec, existing.status) : existing.status;
      const res = await tx.update(def.plural, existing.uid, existing.generation, {
        spec: m.spec,
        labels,
        annotations,
        status,
        columns: def.columns(m.spec, status),
        bumpGeneration: true,
      });
      if (!res.ok)
        throw new Problem('conflict', `${label(def, parent, name)} changed while being updated; retry`);
      await this.afterWrite(tx, def, parent, existing.spec, m.spec);
      const after = render(def, res.resource);
      await tx.appendEvent({
        actor: p.user,
        action: 'update',
        kind: def.kind,
        parent,
        name,
        ...eventScopeOf(def, parent, name),
        before: render(def, existing),
        after,
      });
      return { object: after, action: 'updated' };
    }
    if (expected !== undefined)
      throw new Problem(
        'conflict',
        `${label(def, parent, name)} does not exist, but the change names generation ${expected}`,
      );
    const status = def.initialStatus(m.spec);
    const input = {
      uid: newUid(),
      parent,
      name,
      labels,
      annotations,
      spec: m.spec,
      status,
      createdBy: p.user,
      columns: def.columns(m.spec, status),
    };
    let row: StoredResource;
    const pending = this.pending.get(tx);
    if (pending) {
      row = Store.stored(input, pending.at);
      pending.items.push({ def, input, document: target.document });
    } else {
      try {
        row = await tx.insert(def.plural, input);
      } catch (err) {
        if (isUniqueViolation(err))
          throw new Problem('already_exists', `${label(def, parent, name)} already exists`);
        throw err;
      }
    }
    await this.afterWrite(tx, def, parent, undefined, m.spec);
    const after = render(def, row);
    await tx.appendEvent({
      actor: p.user,
      action: 'create',
      kind: def.kind,
      parent,
      name,
      ...eventScopeOf(def, parent, name),
      before: null,
      after,
    });
    return { object: after, action: 'created' };
  }

  private parentOf(def: KindDef, m: Manifest, pathParent: string | undefined): string {
    if (!def.parent) return '';
    const fromDoc = m.metadata[def.parent];
    if (fromDoc !== undefined && pathParent !== undefined && fromDoc !== pathParent)
      throw Problem.invalid([
        { path: `metadata.${def.parent}`, message: `'${fromDoc}' does not match '${pathParent}' in the URL` },
      ]);
    const parent = fromDoc ?? pathParent;
    if (parent === undefined)
      throw Problem.invalid([{ path: `metadata.${def.parent}`, message: `is required for ${def.kind}` }]);
    return parent;
  }

  private async check(
    tx: Store,
    def: KindDef,
    m: Manifest,
    existing: StoredResource | undefined,
    parent: string,
  ): Promise<FieldError[]> {
    const ctx: CheckContext = {
      exists: async (kind, parent, name) => {
        await this.settle(tx);
        return !!(await tx.get(findKind(kind)!.plural, parent, name));
      },
    };
    const errors = def.check ? [...(await def.check(m.spec, ctx))] : [];
    const admit = this.admission.get(def.kind);
    if (admit && !errors.length) {
      await this.settle(tx);
      errors.push(...(await admit(tx, parent, m.metadata.name, m.spec, existing)));
    }
    if (def.kind === 'Node' && existing && m.spec.site !== existing.spec.site)
      errors.push({ path: 'spec.site', message: 'a node cannot move to another site; re-enrol it there' });
    return errors;
  }

  /**
   * Reads the stored versions of an apply's documents, a few statements for all of them
   * (on PostgreSQL a statement is a round trip; an apply may carry thousands). A document
   * that is not well formed is left to write() to report.
   */
  private async prefetch(tx: Store, documents: readonly unknown[]): Promise<void> {
    if (documents.length < 2) return;
    const wanted = new Map<KindDef, { parent: string; name: string }[]>();
    for (const doc of documents) {
      const m = doc as Partial<Manifest> | null;
      const def = typeof m?.kind === 'string' ? findKind(m.kind) : undefined;
      const name = m?.metadata?.name;
      if (!def || def.kind !== m?.kind || typeof name !== 'string') continue;
      const parent = def.parent ? m.metadata?.[def.parent] : '';
      if (typeof parent !== 'string') continue;
      const keys = wanted.get(def) ?? [];
      keys.push({ parent, name });
      wanted.set(def, keys);
    }
    const known = new Map<string, StoredResource | undefined>();
    for (const [def, keys] of wanted) {
      const found = await tx.getMany(def.plural, keys);
      for (const k of keys)
        known.set(`${def.plural}/${k.parent}/${k.name}`, found.get(`${k.parent}/${k.name}`));
    }
    this.prefetched.set(tx, known);
  }

  /**
   * The stored version of a document about to be written: as prefetched, the first time
   * (an apply never deletes, so only its own writes change what is there); else read.
   */
  private async existing(tx: Store, def: KindDef, parent: string, name: string) {
    const key = `${def.plural}/${parent}/${name}`;
    const known = this.prefetched.get(tx);
    if (known?.has(key)) {
      const found = known.get(key);
      known.delete(key);
      return found;
    }
    await this.settle(tx);
    return tx.get(def.plural, parent, name);
  }

  /**
   * Inserts an apply's new resources that wait (in document order, a few statements a
   * table): called before the apply reads or writes anything else, so that it always
   * sees its own writes. A name another writer took meanwhile fails the apply, reported
   * on the first document of the statement that failed.
   */
  private async settle(tx: Store): Promise<void> {
    const waiting = this.pending.get(tx);
    if (!waiting?.items.length) return;
    const { at, items: pending } = waiting;
    waiting.items = [];
    // Consecutive documents of one kind go together; an apply's order is kept.
    for (let i = 0; i < pending.length; ) {
      let j = i + 1;
      while (j < pending.length && pending[j]!.def === pending[i]!.def) j++;
      const run = pending.slice(i, j);
      const def = run[0]!.def;
      try {
        await tx.insertMany(
          def.plural,
          run.map((w) => w.input),
          at,
        );
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        // The statement failed as a whole (on PostgreSQL the transaction with it): which
        // name was taken is not known, only that another writer created it meanwhile.
        const first = run[0]!;
        const problem = new Problem(
          'already_exists',
          run.length === 1
            ? `${label(def, first.input.parent, first.input.name)} already exists`
            : `one of the ${run.length} ${def.plural} from ${label(def, first.input.parent, first.input.name)} on was created by another writer while this apply ran; apply again`,
        );
        if (first.document !== undefined) problem.document = first.document;
        throw problem;
      }
      i = j;
    }
  }

  /** Read once per transaction: an apply's documents mostly share their parent. */
  private async parentExists(tx: Store, def: KindDef, parent: string): Promise<boolean> {
    const key = `${parentTable(def)}/${parent}`;
    let seen = this.parents.get(tx);
    if (seen?.has(key)) return true;
    await this.settle(tx);
    if (!(await tx.get(parentTable(def), '', parent))) return false;
    if (!seen) {
      seen = new Set();
      this.parents.set(tx, seen);
    }
    seen.add(key);
    return true;
  }

  private async afterWrite(
    tx: Store,
    def: KindDef,
    parent: string,
    before: unknown,
    after: unknown,
  ): Promise<void> {
    if (def.kind !== 'Workload') return;
    const ledger = this.ledgers.get(tx);
    // A project's usage first read may count its workloads: those of this apply included.
    if (!ledger?.has(parent)) await this.settle(tx);
    if (ledger) await ledger.change(tx, parent, before as WorkloadSpec | undefined, after as WorkloadSpec);
    else await updateProjectUsage(tx, parent, before as WorkloadSpec | undefined, after as WorkloadSpec);
  }

  private conflict(def: KindDef, row: StoredResource, expected: number): Problem {
    return new Problem(
      'conflict',
      `${label(def, row.parent, row.name)} is at generation ${row.generation} but the change was based on generation ${expected}; read it again and retry`,
    );
  }

  /** The federation must keep at least one federation-admin. */
  private async guardLastAdmin(tx: Store, user: string, newRoles: readonly RoleBinding[]): Promise<void> {
    if (newRoles.some((b) => b.role === 'federation-admin')) return;
    const admins = (await tx.list('users')).filter((u) =>
      (u.spec.roles as RoleBinding[]).some((b) => b.role === 'federation-admin'),
    );
    if (admins.length === 1 && admins[0]!.name === user)
      throw new Problem('conflict', `user '${user}' is the last federation-admin; make another one first`);
  }
}
