import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError, type ConfigIssue } from '@fairlane/config'
import { FairlaneError, requestIdFrom, toProblem } from '@fairlane/protocol'
import type { Logger } from '@fairlane/telemetry'
import type { Section } from '../store/overlay.ts'
import type { EditableConfigStore } from '../store/redis-config-store.ts'
import { bearerMatches } from './admin-token.ts'
import {
  NOUN,
  createKey,
  putEntry,
  putTarget,
  putWorkspace,
  remove,
  revokeKey,
  rotateKey,
} from './config-edits.ts'
import {
  customerView,
  customerViews,
  routeView,
  routeViews,
  targetView,
  targetViews,
  workspaceView,
  workspaceViews,
} from './resource-views.ts'

export const ADMIN_API_PREFIX = '/admin/v1'

export interface AdminApiOptions {
  /** FAIRLANE_ADMIN_TOKEN; when unset or empty every route answers 403 admin_disabled. */
  readonly token: string | undefined
  readonly store: EditableConfigStore
  readonly logger: Logger
}

type Named = { Params: { name: string } }
type NamedKey = { Params: { name: string; id: string } }

/**
 * The admin API: workspaces, their keys, targets, routes and customers in the cluster's config store, behind
 * the bearer FAIRLANE_ADMIN_TOKEN. Reads answer from this node's running config (what it
 * enforces); changes go through the store, which validates and broadcasts them. A key's
 * secret appears only in the answer that made it, never in a listing or a log line.
 * Register with `{ prefix: ADMIN_API_PREFIX }`.
 */
export function adminApi(options: AdminApiOptions) {
  const { store, logger } = options
  const requestIds = new WeakMap<FastifyRequest, string>()
  const idOf = (request: FastifyRequest) =>
    requestIds.get(request) ?? requestIdFrom(request.headers['x-request-id'])

  const audit = (
    request: FastifyRequest,
    action: string,
    fields: Record<string, string>,
    version: number,
  ) => logger.info({ requestId: idOf(request), action, ...fields, version }, 'admin change')

  return async function register(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (request, reply) => {
      const requestId = requestIdFrom(request.headers['x-request-id'])
      requestIds.set(request, requestId)
      reply.header('x-request-id', requestId)
      if (!options.token)
        throw new FairlaneError(
          'admin_disabled',
          'admin',
          'the admin API is disabled until FAIRLANE_ADMIN_TOKEN is set',
        )
      if (!bearerMatches(request.headers.authorization, options.token))
        throw new FairlaneError(
          'unauthenticated',
          'admin',
          'send the admin token as Authorization: Bearer <FAIRLANE_ADMIN_TOKEN>',
          { headers: { 'www-authenticate': 'Bearer realm="fairlane-admin"' } },
        )
    })

    app.setErrorHandler((err, request, reply) => {
      const requestId = idOf(request)
      if (err instanceof ConfigError) {
        const refusal = new FairlaneError('bad_request', 'admin', describe(err.issues))
        return sendProblem(reply, requestId, refusal, err.issues)
      }
      if (err instanceof FairlaneError) return sendProblem(reply, requestId, err)
      const statusCode = (err as { statusCode?: number }).statusCode
      if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
        // Fastify's own refusals: a body that is not JSON, an unsupported content type.
        const message = err instanceof Error ? err.message : 'bad request'
        return sendProblem(reply, requestId, new FairlaneError('bad_request', 'admin', message))
      }
      logger.error({ requestId, err }, 'admin request failed')
      return sendProblem(reply, requestId, new FairlaneError('internal', 'admin', 'internal error'))
    })

    app.setNotFoundHandler((request, reply) =>
      sendProblem(
        reply,
        idOf(request),
        new FairlaneError(
          'not_found',
          'admin',
          `no admin route ${request.method} ${pathOf(request)}`,
        ),
      ),
    )

    const notFound = (section: Section, name: string) =>
      new FairlaneError('not_found', 'admin', `no ${NOUN[section]} "${name}"`)

    // Workspaces

    app.get('/workspaces', async () => ({ workspaces: workspaceViews(store.view()) }))

    app.get<Named>('/workspaces/:name', async (request) => {
      const found = workspaceView(store.view(), request.params.name)
      if (!found) throw notFound('workspaces', request.params.name)
      return found
    })

    app.put<Named>('/workspaces/:name', async (request, reply) => {
      const { name } = request.params
      const { result, version } = await store.change((layers) =>
        putWorkspace(layers, name, request.body),
      )
      audit(
        request,
        result.created ? 'workspace.create' : 'workspace.replace',
        { workspace: name },
        version,
      )
      return reply.code(result.created ? 201 : 200).send(workspaceView(store.view(), name))
    })

    app.delete<Named>('/workspaces/:name', async (request, reply) => {
      const { name } = request.params
      const { version } = await store.change((layers) => remove(layers, 'workspaces', name))
      audit(request, 'workspace.delete', { workspace: name }, version)
      return reply.code(204).send()
    })

    // Keys of a workspace

    app.get<Named>('/workspaces/:name/keys', async (request) => {
      const found = workspaceView(store.view(), request.params.name)
      if (!found) throw notFound('workspaces', request.params.name)
      return { keys: found.keys }
    })

    app.post<Named>('/workspaces/:name/keys', async (request, reply) => {
      const { name } = request.params
      const { result, version } = await store.change((layers) =>
        createKey(layers, name, request.body),
      )
      audit(request, 'key.create', { workspace: name, keyId: result.id }, version)
      return reply.code(201).header('cache-control', 'no-store').send(result)
    })

    app.post<NamedKey>('/workspaces/:name/keys/:id/rotate', async (request, reply) => {
      const { name, id } = request.params
      const { result, version } = await store.change((layers) => rotateKey(layers, name, id))
      audit(request, 'key.rotate', { workspace: name, keyId: id }, version)
      return reply.code(200).header('cache-control', 'no-store').send(result)
    })

    app.delete<NamedKey>('/workspaces/:name/keys/:id', async (request, reply) => {
      const { name, id } = request.params
      const { version } = await store.change((layers) => revokeKey(layers, name, id))
      audit(request, 'key.revoke', { workspace: name, keyId: id }, version)
      return reply.code(204).send()
    })

    // Targets

    app.get('/targets', async () => ({ targets: targetViews(store.view()) }))

    app.get<Named>('/targets/:name', async (request) => {
      const found = targetView(store.view(), request.params.name)
      if (!found) throw notFound('targets', request.params.name)
      return found
    })

    app.put<Named>('/targets/:name', async (request, reply) => {
      const { name } = request.params
      const { result, version } = await store.change((layers) =>
        putTarget(layers, name, request.body),
      )
      audit(request, result.created ? 'target.create' : 'target.replace', { target: name }, version)
      return reply.code(result.created ? 201 : 200).send(targetView(store.view(), name))
    })

    app.delete<Named>('/targets/:name', async (request, reply) => {
      const { name } = request.params
      const { version } = await store.change((layers) => remove(layers, 'targets', name))
      audit(request, 'target.delete', { target: name }, version)
      return reply.code(204).send()
    })

    // Routes and customers (inbound mode): whole entries, replaced by PUT.

    const views = {
      routes: { one: routeView, all: routeViews },
      customers: { one: customerView, all: customerViews },
    }
    for (const section of ['routes', 'customers'] as const) {
      const noun = NOUN[section]
      const { one, all } = views[section]
      app.get(`/${section}`, async () => ({ [section]: all(store.view()) }))

      app.get<Named>(`/${section}/:name`, async (request) => {
        const found = one(store.view(), request.params.name)
        if (!found) throw notFound(section, request.params.name)
        return found
      })

      app.put<Named>(`/${section}/:name`, async (request, reply) => {
        const { name } = request.params
        const { result, version } = await store.change((layers) =>
          putEntry(layers, section, name, request.body),
        )
        audit(
          request,
          `${noun}.${result.created ? 'create' : 'replace'}`,
          { [noun]: name },
          version,
        )
        return reply.code(result.created ? 201 : 200).send(one(store.view(), name))
      })

      app.delete<Named>(`/${section}/:name`, async (request, reply) => {
        const { name } = request.params
        const { version } = await store.change((layers) => remove(layers, section, name))
        audit(request, `${noun}.delete`, { [noun]: name }, version)
        return reply.code(204).send()
      })
    }
  }
}

function sendProblem(
  reply: FastifyReply,
  requestId: string,
  err: FairlaneError,
  problems?: readonly ConfigIssue[],
): FastifyReply {
  const body = { ...toProblem(err, requestId), ...(problems ? { problems } : {}) }
  return reply
    .code(body.status)
    .headers({
      ...err.headers,
      'x-request-id': requestId,
      'content-type': 'application/problem+json',
    })
    .send(JSON.stringify(body))
}

function describe(issues: readonly ConfigIssue[]): string {
  const listed = issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')
  return `the change is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}): ${listed}`
}

/** The path without its query string, which could hold anything. */
function pathOf(request: FastifyRequest): string {
  const url = request.raw.url ?? '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
