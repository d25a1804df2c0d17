// Runs SwitchingRequests (EU Data Act, chapter VI) on the control plane's clock, which
// tests replace to move through months in seconds. Each pass reads every open request
// and takes the step its time and state allow, writing each step to the audit trail:
//
//   Notice      until the notice period ends (at most two months);
//   Transition  inside the federation: the project's workloads may no longer use the
//               provider (and go to the one named), so the planner moves every replica —
//               live where the nodes can — and the transition ends when none is left
//               there and all run; out of the federation: it ends with a complete
//               download of an export of the project. Its deadline is 30 days, or what
//               the provider declared in time, plus the customer's one extension; a
//               deadline that passes is an event (`deadline-missed`) and the step goes on;
//   Retrieval   at least 30 days in which the data stays retrievable;
//   Erasure     every node that held the project's instances on the provider (out of the
//               federation: on any provider) deletes them and the project's image files,
//               hashing each first; out of the federation the control plane deletes the
//               workloads, images, migrations and exports too. A certificate listing every
//               artefact with its checksum and deletion time, signed with the federation's
//               CA, ends it (Completed).
import { createHash } from 'node:crypto';
import type { Principal } from '../auth/index.js';
import {
  type ImageStatus,
  imageKind,
  migrationKind,
  SWITCHING_LIMITS,
  type SwitchingSpec,
  type SwitchingStatus,
  switchingKind,
  type WorkloadSpec,
  workloadKind,
} from '../model/index.js';
import type { AgentRequests, ErasedArtefact } from '../protocol/index.js';
import { canonical } from '../resources/render.js';
import type { ResourceService } from '../resources/service.js';
import { signDetached } from '../resources/signing.js';
import type { Store, StoredResource } from '../store/index.js';
import type { AgentLink } from './migration-controller.js';

const ACTOR = 'controller:switching';
/** How the controller acts on the project's objects: as the federation. */
const SYSTEM: Principal = { user: ACTOR, bindings: [{ role: 'federation-admin' }], tokenId: '' };
export const DAY = 86_400_000;

export function addDays(t: Date, days: number): Date {
  return new Date(t.getTime() + days * DAY);
}

/** The same day of the month `months` later (the month's last day when it has fewer). */
export function addMonths(t: Date, months: number): Date {
  const d = new Date(t);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d;
}

/** `n` working days (Monday to Friday) later; public holidays are not counted out. */
export function addWorkingDays(t: Date, n: number): Date {
  const d = new Date(t);
  while (n > 0) {
    d.setTime(d.getTime() + DAY);
    const wd = d.getUTCDay();
    if (wd !== 0 && wd !== 6) n--;
  }
  return d;
}

/** The signed erasure certificate of a completed switching, as it is kept. */
export interface ErasureCertificate {
  /** The certificate itself: canonical JSON, what the signature covers. */
  document: string;
  /** ECDSA P-256 over SHA-256, DER, base64. */
  signature: string;
}

export interface CertificateArtefact extends ErasedArtefact {
  /** provider/node, or control-plane. */
  where: string;
}

export interface SwitchingControllerOptions {
  store: Store;
  resources: ResourceService;
  agents?: Pick<AgentLink, 'request'>;
  /** The federation's CA: it signs erasure certificates. */
  ca(): Promise<{ certPem: string; keyPem: string; fingerprint: string }>;
  /** The project's exports (erased out of the federation), and the content of image files. */
  eraseExports?(project: string): Promise<ErasedArtefact[]>;
  eraseImageFile?(sha256: string): Promise<ErasedArtefact | undefined>;
  /** The time the timeline runs on (default: now). */
  clock?: () => Date;
  intervalMs?: number;
  log?: (msg: string, err?: unknown) => void;
}

/** The checksums of an image's uploaded files. */
const uploadedShas = (img: StoredResource) =>
  Object.values((img.status as ImageStatus).files ?? {}).map((f) => f!.sha256);

const certificateKey = (uid: string) => `erasure-certificate/${uid}`;
const nodeResultKey = (uid: string, node: string) => `erasure/${uid}/${node}`;

export class SwitchingController {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private unsubscribe?: () => void;

  constructor(private readonly opts: SwitchingControllerOptions) {}

  now(): Date {
    return this.opts.clock?.() ?? new Date();
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => this.background(), this.opts.intervalMs ?? 5000);
    this.timer.unref();
    // A new or changed request is looked at at once.
    this.unsubscribe = this.opts.store.changes.subscribe((changes) => {
      if (changes.some((c) => 'table' in c && c.table === 'switchings' && c.by !== ACTOR)) this.background();
    });
    await this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
  }

  /** A pass started by the timer or the feed: a failure (the store away) is logged, retried at the next. */
  private background(): void {
    this.tick().catch((err) =>
      this.opts.log?.('switching: reading the open requests failed; retried at the next tick', err),
    );
  }

  /** One pass over the open requests (passes never overlap; one asked meanwhile follows). */
  tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        for (const row of await this.opts.store.list('switchings')) {
          if ((row.status as SwitchingStatus).phase === 'Completed') continue;
          await this.step(row).catch((err) =>
            this.opts.log?.(`switching ${row.parent}/${row.name}: ${(err as Error).message}`, err),
          );
        }
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The signed certificate of a completed switching. */
  async certificate(uid: string): Promise<ErasureCertificate | undefined> {
    const raw = await this.opts.store.getMeta(certificateKey(uid));
    return raw ? (JSON.parse(raw) as ErasureCertificate) : undefined;
  }

  /** The timeline's dates from what is known: the request, a declaration, an extension. */
  static timeline(spec: SwitchingSpec, st: SwitchingStatus, requestedAt: Date): Partial<SwitchingStatus> {
    const noticeEnds = addDays(requestedAt, spec.noticeDays ?? 0);
    const days =
      (st.declaration?.transitionDays ?? SWITCHING_LIMITS.transitionDays) + (st.extension?.days ?? 0);
    return {
      requestedAt: requestedAt.toISOString(),
      noticeEndsAt: noticeEnds.toISOString(),
      declarationDueAt: addWorkingDays(requestedAt, SWITCHING_LIMITS.declarationWorkingDays).toISOString(),
      transitionEndsAt: addDays(noticeEnds, days).toISOString(),
    };
  }

  private async step(row: StoredResource): Promise<void> {
    const spec = row.spec as SwitchingSpec;
    const was = row.status as SwitchingStatus;
    const st: SwitchingStatus = { ...was };
    const now = this.now();
    const events: { action: string; after: object }[] = [];
    if (!st.requestedAt) {
      Object.assign(st, SwitchingController.timeline(spec, st, now), {
        sinceSeq: await this.opts.store.lastEventPosition(),
      });
      events.push({ action: 'requested', after: { ...spec, ...st } });
    }
    if (st.phase === 'Notice' && now >= new Date(st.noticeEndsAt!)) {
      st.phase = 'Transition';
      events.push({ action: 'transition', after: { transitionEndsAt: st.transitionEndsAt } });
    }
    if (st.phase === 'Transition') {
      const done = spec.to.provider ? await this.moveOff(row, spec, st) : await this.exported(row.parent, st);
      if (done) {
        st.phase = 'Retrieval';
        st.transitionDoneAt = now.toISOString();
        st.retrievalEndsAt = addDays(now, spec.retrievalDays ?? SWITCHING_LIMITS.retrievalDays).toISOString();
        st.message = `transition done; the data stays retrievable until ${st.retrievalEndsAt}`;
        events.push({ action: 'retrieval', after: { retrievalEndsAt: st.retrievalEndsAt } });
      } else if (now > new Date(st.transitionEndsAt!) && !st.missed?.includes('transition')) {
        st.missed = [...(st.missed ?? []), 'transition'];
        events.push({
          action: 'deadline-missed',
          after: { deadline: 'transition', dueAt: st.transitionEndsAt, message: st.message },
        });
      }
    }
    if (st.phase === 'Retrieval' && now >= new Date(st.retrievalEndsAt!)) {
      st.phase = 'Erasure';
      st.message = 'erasing what the project held on the provider';
      events.push({ action: 'erasure', after: {} });
    }
    if (st.phase === 'Erasure') {
      const cert = await this.erase(row, spec, st, now);
      if (typeof cert === 'string') st.message = cert;
      else {
        st.phase = 'Completed';
        st.erasedAt = now.toISOString();
        st.certificate = cert;
        st.message = `erased; ${cert.artefacts} artefact(s) in the erasure certificate`;
        events.push({ action: 'completed', after: { certificate: cert } });
      }
    }
    if (canonical(st) === canonical(was) && !events.length) return;
    await this.opts.store.transaction(
      async (tx) => {
        const current = await tx.get('switchings', row.parent, row.name);
        if (!current || current.uid !== row.uid) return;
        // A declaration or extension written meanwhile wins: taken on the next pass.
        if (canonical(current.status) !== canonical(was)) return;
        await tx.setStatus('switchings', row.uid, st, { phase: st.phase });
        for (const e of events)
          await tx.appendEvent({
            actor: ACTOR,
            action: e.action,
            kind: switchingKind.kind,
            parent: row.parent,
            name: row.name,
            // The provider the project leaves sees the request's course in its audit log.
            provider: spec.from,
            project: row.parent,
            before: { phase: was.phase },
            after: { phase: st.phase, at: now.toISOString(), ...e.after },
          });
      },
      { by: ACTOR },
    );
  }

  /**
   * Inside the federation: the project's workloads may no longer use the provider it
   * leaves, and go to the one it names. Done when none of its replicas is there and all
   * run.
   */
  private async moveOff(row: StoredResource, spec: SwitchingSpec, st: SwitchingStatus): Promise<boolean> {
    const project = row.parent;
    const to = spec.to.provider!;
    for (const w of await this.opts.store.list('workloads', { parents: [project] })) {
      const ws = w.spec as WorkloadSpec;
      const p = ws.placement ?? {};
      const deny = [...new Set([...(p.providers?.deny ?? []), spec.from])];
      const allow = [to];
      // A pin to a node of the provider it leaves goes too (a pinned replica never moves).
      const pinnedThere = p.node?.startsWith(`${spec.from}/`);
      const { node: _pin, ...unpinned } = p;
      if (
        !pinnedThere &&
        canonical(p.providers?.allow) === canonical(allow) &&
        canonical(p.providers?.deny) === canonical(deny)
      )
        continue;
      await this.opts.resources.apply(SYSTEM, [
        {
          kind: workloadKind.kind,
          metadata: { name: w.name, project, labels: w.labels },
          spec: { ...ws, placement: { ...(pinnedThere ? unpinned : p), providers: { allow, deny } } },
        },
      ]);
    }
    const instances = (await this.opts.store.listInstances({ project })).filter(
      (i) => i.desired !== 'absent',
    );
    const left = instances.filter((i) => i.provider === spec.from);
    const waiting = instances.filter((i) => i.provider !== spec.from && i.status.phase !== 'Running');
    st.remaining = left.length;
    st.message = left.length
      ? `${left.length} replica(s) still on ${spec.from} (${left
          .slice(0, 5)
          .map((i) => i.name)
          .join(', ')}): moving to ${to}`
      : waiting.length
        ? `${waiting.length} replica(s) starting on ${to}`
        : `every replica runs on ${to}`;
    return left.length === 0 && waiting.length === 0;
  }

  /** Out of the federation: a complete download of an export made after the request. */
  private async exported(project: string, st: SwitchingStatus): Promise<boolean> {
    for (let after = st.sinceSeq ?? 0; ; ) {
      const page = await this.opts.store.listEvents({
        kind: 'Export',
        parent: project,
        after,
        limit: 500,
      });
      if (!page.length) break;
      for (const e of page) {
        after = e.position;
        if (e.action === 'download' && (e.after as { complete?: boolean } | null)?.complete) {
          st.message = `exported (${(e.after as { bytes: number }).bytes} bytes downloaded)`;
          return true;
        }
      }
    }
    st.message = `waiting for the project's export: continuum export project ${project} -o FILE`;
    return false;
  }

  /** Where the project's instances have been: node → the uids bound there. */
  private async placements(project: string): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    const add = (provider: string, node: string, uid: string) => {
      const k = `${provider}/${node}`;
      const set = out.get(k) ?? new Set<string>();
      set.add(uid);
      out.set(k, set);
    };
    for (let after = 0; ; ) {
      const page = await this.opts.store.listEvents({
        kind: 'Instance',
        parent: project,
        after,
        limit: 1000,
      });
      if (!page.length) break;
      for (const e of page) {
        after = e.position;
        for (const doc of [e.before, e.after] as ({
          uid?: string;
          provider?: string;
          node?: string;
        } | null)[])
          if (doc?.uid && doc.provider && doc.node) add(doc.provider, doc.node, doc.uid);
      }
    }
    for (const i of await this.opts.store.listInstances({ project }))
      if (i.node) add(i.provider, i.node, i.uid);
    return out;
  }

  /**
   * Erases what the project held on the provider (out of the federation: everywhere);
   * returns the certificate's summary, or why it waits (a node not connected: asked
   * again on the next pass; what nodes already erased is kept).
   */
  private async erase(
    row: StoredResource,
    spec: SwitchingSpec,
    st: SwitchingStatus,
    now: Date,
  ): Promise<NonNullable<SwitchingStatus['certificate']> | string> {
    const { store } = this.opts;
    const project = row.parent;
    const outside = !spec.to.provider;
    const images = await store.list('images', { parents: [project] });
    const shas = new Set<string>();
    for (const img of images) for (const sha of uploadedShas(img)) shas.add(sha);
    const placed = await this.placements(project);
    const artefacts: CertificateArtefact[] = [];
    const verifiedAbsent: { where: string; instances: string[] }[] = [];
    const kept: { where: string; sha256: string; reason: string }[] = [];
    const waiting: string[] = [];
    const unverified: { where: string; reason: string }[] = [];
    for (const [where, uids] of placed) {
      const [provider, node] = where.split('/') as [string, string];
      if (!outside && provider !== spec.from) continue;
      let result = await store.getMeta(nodeResultKey(row.uid, where));
      if (!result && !(await store.get('nodes', provider, node))) {
        // Removed from the federation since: nothing to ask; the certificate says so.
        unverified.push({ where, reason: 'the node left the federation before the erasure' });
        continue;
      }
      if (!result) {
        if (!this.opts.agents) return 'no agent gateway: the nodes cannot be asked to erase';
        try {
          const r = await this.opts.agents.request(
            provider,
            node,
            'erase',
            { project, uids: [...uids], images: [...shas] },
            10 * 60_000,
          );
          result = JSON.stringify(r);
          await store.setMeta(nodeResultKey(row.uid, where), result);
        } catch (err) {
          waiting.push(`${where} (${(err as Error).message})`);
          continue;
        }
      }
      const r = JSON.parse(result) as AgentRequests['erase']['result'];
      for (const a of r.artefacts) artefacts.push({ where, ...a });
      if (r.absent.length) verifiedAbsent.push({ where, instances: r.absent });
      for (const k of r.kept) kept.push({ where, ...k });
    }
    if (waiting.length) return `erasure waits for node(s) to answer: ${waiting.join('; ')}`;
    if (outside) artefacts.push(...(await this.eraseInStore(project, images)));
    const ca = await this.opts.ca();
    const document = canonical({
      type: 'continuum.eu/erasure-certificate',
      version: 1,
      switchingRequest: { project, name: row.name, uid: row.uid },
      from: spec.from,
      to: spec.to,
      requestedAt: st.requestedAt,
      transitionDoneAt: st.transitionDoneAt,
      retrievalEndsAt: st.retrievalEndsAt,
      erasedAt: now.toISOString(),
      issuer: { caFingerprintSha256: ca.fingerprint },
      artefacts,
      verifiedAbsent,
      kept,
      unverified,
    });
    const signature = signDetached(Buffer.from(document), ca.keyPem).toString('base64');
    await store.setMeta(certificateKey(row.uid), JSON.stringify({ document, signature }));
    return {
      artefacts: artefacts.length,
      sha256: createHash('sha256').update(document).digest('hex'),
      signedBy: ca.fingerprint,
    };
  }

  /** Out of the federation: the project's objects in the control plane go, each recorded. */
  private async eraseInStore(project: string, images: StoredResource[]): Promise<CertificateArtefact[]> {
    const out: CertificateArtefact[] = [];
    const manifest = (kind: string, r: StoredResource) => {
      const doc = canonical({ kind, name: r.name, spec: r.spec, labels: r.labels });
      out.push({
        where: 'control-plane',
        kind: 'manifest',
        name: `${kind}/${project}/${r.name}`,
        sha256: createHash('sha256').update(doc).digest('hex'),
        bytes: Buffer.byteLength(doc),
        deletedAt: new Date().toISOString(),
      });
    };
    const { store, resources } = this.opts;
    for (const w of await store.list('workloads', { parents: [project] })) {
      await resources.remove(SYSTEM, workloadKind, project, w.name);
      manifest(workloadKind.kind, w);
    }
    for (const m of await store.list('migrations', { parents: [project] })) {
      await resources.remove(SYSTEM, migrationKind, project, m.name);
      manifest(migrationKind.kind, m);
    }
    // Content another project's image has too stays (files are kept by checksum).
    const shared = new Set(
      (await store.list('images')).filter((o) => o.parent !== project).flatMap(uploadedShas),
    );
    for (const img of images) {
      await resources.remove(SYSTEM, imageKind, project, img.name);
      manifest(imageKind.kind, img);
      for (const sha of uploadedShas(img)) {
        if (shared.has(sha)) continue;
        const erased = await this.opts.eraseImageFile?.(sha);
        if (erased) out.push({ where: 'control-plane', ...erased });
      }
    }
    for (const a of (await this.opts.eraseExports?.(project)) ?? [])
      out.push({ where: 'control-plane', ...a });
    return out;
  }
}
