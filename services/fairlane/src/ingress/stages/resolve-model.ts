import { FairlaneError } from '@fairlane/protocol'
import { hasBody, type Exchange } from '../exchange.ts'
import type { RouteConfig, WorkspaceConfig } from '@fairlane/config'
import { hostName, matchRoute, routeTableOf } from '../inbound/route-table.ts'
import { hasModels, modelTableOf, workspacesRouteByModel } from '../llm/model-table.ts'
import { meterModelRequest } from '../llm/meter-model-request.ts'
import { isRouteRequest } from './match-route.ts'
import { readOpenAiRequest } from '../llm/openai-request.ts'
import { readBody } from '../read-body.ts'
import { targetRoute } from '../route.ts'
import { checkEndpoints, type ResolveDeps } from './resolve.ts'

/** OpenAI-style endpoints whose JSON body names the model that picks the target. */
const MODEL_ENDPOINTS = new Set([
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/moderations',
  '/v1/images/generations',
  '/v1/audio/speech',
])

/**
 * Which front door a request is for, if any: the path is one of its endpoints, there is no
 * X-Fairlane-Url (the URL form goes to its URL whatever the path), and either an inbound
 * route with `models` matches it (its callers, no Fairlane key), or a workspace routes by
 * model (a Fairlane key). A route without `models` is the operator's own API and yields to
 * the workspace front door. One string test for every other request.
 */
export function frontDoorOf(x: Exchange): 'workspace' | 'route' | undefined {
  if (!x.path.startsWith('/v1/') || !isFrontDoorPath(x)) return undefined
  if (x.req.headers['x-fairlane-url'] !== undefined) return undefined
  if (isRouteRequest(x)) {
    const route = matchRoute(routeTableOf(x.config), hostName(x.req.headers.host), x.path)
    if (route && hasModels(route.config)) return 'route'
  }
  return workspacesRouteByModel(x.config) ? 'workspace' : undefined
}

function isFrontDoorPath(x: Exchange): boolean {
  if (x.method === 'POST') return MODEL_ENDPOINTS.has(x.path)
  return (x.method === 'GET' || x.method === 'HEAD') && isModelsPath(x.path)
}

function isModelsPath(path: string): boolean {
  return path === '/v1/models' || (path.startsWith('/v1/models/') && path.length > 11)
}

/**
 * GET /v1/models (and /v1/models/<id>): the models the caller's workspace (or route) may use, answered
 * here in OpenAI's list shape; patterns are listed as written. True when it answered.
 */
export function answerModels(x: Exchange): boolean {
  if (x.method === 'POST') return false
  x.stage = 'resolve'
  const models = modelTableOf(modelOwnerOf(x)).entries.map(({ model, target }) => ({
    id: model,
    object: 'model',
    created: 0,
    owned_by: target,
  }))
  let answer: unknown = { object: 'list', data: models }
  if (x.path !== '/v1/models') {
    const id = modelId(x.path.slice('/v1/models/'.length))
    const known = models.find((m) => m.id === id)
    if (!known) throw notAllowed(id)
    answer = known
  }
  const body = JSON.stringify(answer)
  x.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': x.requestId,
  })
  x.res.end(x.method === 'HEAD' ? undefined : body)
  return true
}

function modelId(encoded: string): string {
  try {
    return decodeURIComponent(encoded)
  } catch {
    throw new FairlaneError(
      'bad_request',
      'resolve',
      'the model id is not a valid URL path segment',
    )
  }
}

function notAllowed(model: string): FairlaneError {
  return new FairlaneError('model_not_allowed', 'resolve', `model "${model}" is not available here`)
}

/** The model map that applies: the matched route's, or the caller's workspace's. */
function modelOwnerOf(x: Exchange): WorkspaceConfig | RouteConfig {
  const owner = x.inbound?.config ?? x.principal?.workspace
  if (!owner) throw new FairlaneError('internal', 'resolve', 'models before the caller is known')
  return owner
}

/**
 * Stage 3 of the front door: the body, read whole (bounded by maxBodyBytes and the body
 * timeouts), names the model; the workspace's (or route's) model map names the target; then the same
 * endpoint check as the /t/ form. The path goes upstream as the client sent it, after the
 * endpoint's base path.
 */
export async function resolveModel(x: Exchange, deps: ResolveDeps): Promise<void> {
  x.stage = 'resolve'
  const owner = modelOwnerOf(x)
  if (!hasBody(x)) throw new FairlaneError('bad_request', 'resolve', 'a JSON body is required')
  const body = await readBody(x)
  const request = readOpenAiRequest(body)
  const name = modelTableOf(owner).targetOf(request.model)
  const target =
    name !== undefined && Object.hasOwn(x.config.targets, name) ? x.config.targets[name] : undefined
  if (name === undefined || !target) throw notAllowed(request.model)
  x.body = meterModelRequest(x, target, body, request, x.path)
  const raw = x.req.url ?? x.path
  const q = raw.indexOf('?')
  const route = targetRoute(name, target, x.path, q === -1 ? '' : raw.slice(q))
  x.route = route
  x.target = name
  x.targetConfig = target
  await checkEndpoints(x, route, target, deps)
}
