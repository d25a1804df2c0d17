import { Type } from 'typebox';
import {
  adminOfProviders,
  type InstanceAccess,
  instanceAccess,
  isFederationAdmin,
  type Principal,
  projectsOf,
} from '../../auth/index.js';
import { NAME_PATTERN, Name, Problem, type ProjectSpec } from '../../model/index.js';
import { INSTANCE_PHASES } from '../../protocol/index.js';
import { decodeCursor, encodeCursor } from '../../resources/index.js';
import type { InstanceRecord, Store } from '../../store/index.js';
import type { ApiContext } from '../context.js';
import type { Api } from '../type-provider.js';
import { ErrorBody, PageQuery, principalOf } from './shared.js';

export const InstanceObject = Type.Object({
  apiVersion: Type.String(),
  kind: Type.Literal('Instance'),
  metadata: Type.Object({
    name: Type.String(),
    project: Type.String(),
    uid: Type.String(),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  }),
  spec: Type.Object({
    workload: Type.String(),
    ordinal: Type.Integer(),
    node: Type.String({ description: 'PROVIDER/NODE the instance is bound to' }),
    desired: Type.String(),
    fence: Type.Integer(),
    revision: Type.Integer(),
    vcpus: Type.Integer(),
    memoryMiB: Type.Integer(),
    diskGiB: Type.Integer(),
    hostname: Type.String(),
    image: Type.Object({ project: Type.String(), name: Type.String() }),
    ports: Type.Array(
      Type.Object({
        guest: Type.Integer(),
        protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')])),
        name: Type.Optional(Type.String()),
      }),
    ),
    userData: Type.Optional(
      Type.String({
        description:
          "cloud-init user data: shown to the project's members, and to its provider's admins when the project grants providerAccess.userData",
      }),
    ),
  }),
  status: Type.Object({
    phase: Type.Union(INSTANCE_PHASES.map((p) => Type.Literal(p))),
    ports: Type.Array(
      Type.Object({
        guest: Type.Integer(),
        protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp')]),
        host: Type.Integer({ description: 'the port on the node' }),
        address: Type.String({ description: 'where the node forwards it' }),
      }),
    ),
    restarts: Type.Integer(),
    message: Type.Optional(Type.String()),
    observedRevision: Type.Integer(),
    startedAt: Type.Optional(Type.String()),
    accelerator: Type.Optional(Type.String()),
  }),
});

export function renderInstance(i: InstanceRecord, access?: Pick<InstanceAccess, 'userData'>) {
  return {
    apiVersion: 'continuum/v1',
    kind: 'Instance' as const,
    metadata: {
      name: i.name,
      project: i.project,
      uid: i.uid,
      createdAt: i.createdAt,
      updatedAt: i.updatedAt,
    },
    spec: {
      workload: i.workload,
      ordinal: i.ordinal,
      node: `${i.provider}/${i.node}`,
      desired: i.desired,
      fence: i.fence,
      revision: i.revision,
      vcpus: i.vcpus,
      memoryMiB: i.memoryMiB,
      diskGiB: i.diskGiB,
      hostname: i.spec.hostname,
      image: { project: i.spec.image.project, name: i.spec.image.name },
      ports: i.spec.ports,
      ...(access?.userData && i.spec.userData !== undefined ? { userData: i.spec.userData } : {}),
    },
    status: i.status,
  };
}

/** Instances a principal can see, with what it may do with each (its project's grant). */
async function accessTo(
  store: Store,
  p: Principal,
  instances: readonly InstanceRecord[],
): Promise<Array<{ instance: InstanceRecord; access: InstanceAccess }>> {
  const grants = new Map<string, ProjectSpec['providerAccess']>();
  const out: Array<{ instance: InstanceRecord; access: InstanceAccess }> = [];
  for (const i of instances) {
    let access = instanceAccess(p, i, undefined);
    if (!access.read) continue;
    if (!access.userData || !access.console) {
      // A provider-admin: what the project grants its providers.
      if (!grants.has(i.project))
        grants.set(i.project, (await store.get('projects', '', i.project))?.spec.providerAccess);
      access = instanceAccess(p, i, grants.get(i.project));
    }
    out.push({ instance: i, access });
  }
  return out;
}

async function findVisible(
  store: Store,
  p: Principal,
  project: string,
  name: string,
): Promise<{ instance: InstanceRecord; access: InstanceAccess }> {
  const i = await store.getInstance(project, name);
  const [found] = i ? await accessTo(store, p, [i]) : [];
  if (!found) throw new Problem('not_found', `Instance '${project}/${name}' not found`);
  return found;
}

/** A user's power action: recorded on the instance as desired state, pushed to its agent. */
async function powerAction(
  ctx: ApiContext,
  p: Principal,
  project: string,
  name: string,
  action: 'start' | 'stop' | 'reboot',
) {
  return ctx.store.transaction(async (tx) => {
    const { instance: i, access } = await findVisible(tx, p, project, name);
    if (!access.power)
      throw new Problem('forbidden', `user '${p.user}' may not ${action} instances of project '${project}'`);
    if (i.desired === 'absent')
      throw new Problem('conflict', `Instance '${project}/${name}' is being deleted`);
    if (action === 'reboot' && i.desired !== 'running')
      throw new Problem('conflict', `Instance '${project}/${name}' is stopped; start it instead`);
    const spec = { ...i.spec };
    if (action === 'stop') spec.powerOff = true;
    if (action === 'start') delete spec.powerOff;
    if (action === 'reboot') spec.reboots = (spec.reboots ?? 0) + 1;
    const desired = spec.powerOff ? 'stopped' : 'running';
    const e = await tx.appendEvent({
      actor: p.user,
      action,
      kind: 'Instance',
      parent: project,
      name,
      provider: i.provider,
      project,
      before: { provider: i.provider, node: i.node, desired: i.desired },
      after: { provider: i.provider, node: i.node, desired },
    });
    await tx.setInstanceDesired({ ...i, spec, desired, revision: e.seq }, i);
    return renderInstance((await tx.getInstanceByUid(i.uid))!, access);
  });
}

export function instanceRoutes(app: Api, ctx: ApiContext): void {
  const tags = ['Instance'];
  const errors = { 401: ErrorBody, 404: ErrorBody, 503: ErrorBody };
  const List = Type.Object({
    items: Type.Array(InstanceObject),
    nextCursor: Type.Optional(Type.String({ description: 'pass as cursor for the next page' })),
  });
  const listQuery = Type.Object(
    {
      project: Type.Optional(Name),
      workload: Type.Optional(Name),
      node: Type.Optional(
        Type.String({
          pattern: `^${NAME_PATTERN.slice(1, -1)}/${NAME_PATTERN.slice(1, -1)}$`,
          description: 'PROVIDER/NODE',
        }),
      ),
      ...PageQuery,
    },
    { additionalProperties: false },
  );

  /**
   * One page of the instances the principal may see, in (project, name) order: the store
   * reads only the principal's projects and providers, never the whole federation.
   */
  const list = async (
    p: Principal,
    q: { project?: string; workload?: string; node?: string; limit?: number; cursor?: string },
  ) => {
    let after: { project: string; name: string } | undefined;
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      if (!c) throw Problem.invalid([{ path: 'cursor', message: 'is not a cursor this server issued' }]);
      after = { project: c.parent, name: c.name };
    }
    const [provider, node] = q.node ? q.node.split('/') : [];
    const limit = q.limit ?? 100;
    const rows = await ctx.store.listInstances({
      ...(q.project ? { project: q.project } : {}),
      ...(q.workload ? { workload: q.workload } : {}),
      ...(provider ? { provider } : {}),
      ...(node ? { node } : {}),
      ...(isFederationAdmin(p) ? {} : { reach: { projects: projectsOf(p), providers: adminOfProviders(p) } }),
      ...(after ? { after } : {}),
      limit: limit + 1,
    });
    const shown = rows.slice(0, limit);
    const seen = await accessTo(ctx.store, p, shown);
    const last = shown.at(-1);
    return {
      items: seen.map(({ instance, access }) => renderInstance(instance, access)),
      ...(rows.length > limit && last
        ? { nextCursor: encodeCursor({ parent: last.project, name: last.name }) }
        : {}),
    };
  };

  app.get('/v1/instances', {
    schema: {
      tags,
      summary: 'List instances you can see (filter by project, workload, node)',
      querystring: listQuery,
      response: { 200: List, ...errors },
    },
    handler: async (req) => list(principalOf(req), req.query),
  });

  app.get('/v1/projects/:project/instances', {
    schema: {
      tags,
      summary: "List a project's instances",
      params: Type.Object({ project: Name }),
      querystring: Type.Object(
        { workload: Type.Optional(Name), ...PageQuery },
        { additionalProperties: false },
      ),
      response: { 200: List, ...errors },
    },
    handler: async (req) => {
      const p = principalOf(req);
      // Provider-admins see instances on their nodes through /v1/instances?node=.
      if (!isFederationAdmin(p) && !projectsOf(p).includes(req.params.project))
        throw new Problem('parent_not_found', `project '${req.params.project}' not found`);
      return list(p, { ...req.query, project: req.params.project });
    },
  });

  app.get('/v1/projects/:project/instances/:name', {
    schema: {
      tags,
      summary: 'Read one instance',
      params: Type.Object({ project: Name, name: Name }),
      response: { 200: InstanceObject, ...errors },
    },
    handler: async (req) => {
      const { instance, access } = await findVisible(
        ctx.store,
        principalOf(req),
        req.params.project,
        req.params.name,
      );
      return renderInstance(instance, access);
    },
  });

  for (const action of ['start', 'stop', 'reboot'] as const) {
    app.post(`/v1/projects/:project/instances/:name/${action}`, {
      schema: {
        tags,
        summary: `${action[0]!.toUpperCase()}${action.slice(1)} an instance`,
        params: Type.Object({ project: Name, name: Name }),
        response: { 200: InstanceObject, ...errors, 403: ErrorBody, 409: ErrorBody },
      },
      handler: async (req) => powerAction(ctx, principalOf(req), req.params.project, req.params.name, action),
    });
  }

  app.get('/v1/projects/:project/instances/:name/console', {
    schema: {
      tags,
      summary: "Read an instance's serial console from a byte offset (from its node's agent)",
      params: Type.Object({ project: Name, name: Name }),
      querystring: Type.Object(
        {
          offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1048576, default: 65536 })),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({ data: Type.String(), next: Type.Integer() }),
        ...errors,
        403: ErrorBody,
      },
    },
    handler: async (req, _reply) => {
      const p = principalOf(req);
      const { instance: i, access } = await findVisible(ctx.store, p, req.params.project, req.params.name);
      if (!access.console)
        throw new Problem(
          'forbidden',
          `user '${p.user}' may not read the console of '${i.project}/${i.name}': project '${i.project}' does not grant its providers console access (spec.providerAccess.console)`,
        );
      if (!ctx.gateway) throw new Problem('node_unreachable', 'this control plane runs no agent gateway');
      return ctx.gateway.request(i.provider, i.node, 'console', {
        uid: i.uid,
        offset: req.query.offset ?? 0,
        limit: req.query.limit ?? 65536,
      });
    },
  });
}
