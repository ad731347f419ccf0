import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import {
  AuthenticationError,
  FairlaneClient,
  PermissionDeniedError,
  RateLimitError,
  problemError,
} from '../src/index.ts'
import { startFairlane, type FairlaneProcess } from './fairlane-process.ts'

// Keys of spec/test-vectors/fairlane.yaml.
const DEMO_KEY = 'fl_demo_quickstart'
const INSTANT_KEY = 'fl_sdk_instant'

let upstream: LoopbackUpstream
let fairlane: FairlaneProcess

beforeAll(async () => {
  upstream = await startUpstream()
  fairlane = await startFairlane({ ECHO_URL: upstream.url })
})

afterAll(async () => {
  await fairlane?.close()
  await upstream?.close()
})

beforeEach(() => {
  upstream.clear()
  upstream.behave(() => ({ kind: 'echo' }))
})

describe('target fetch (/t/<target>)', () => {
  it('sends the request to the target with the key, which never reaches the upstream', async () => {
    const echo = new FairlaneClient({ baseUrl: fairlane.url, key: DEMO_KEY }).target('echo')
    const response = await echo('/orders?id=7', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer upstream-own' },
      body: JSON.stringify({ n: 1 }),
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-request-id')).toBeTruthy()
    const seen = upstream.requests.at(-1)
    expect(seen?.method).toBe('POST')
    expect(seen?.url).toBe('/orders?id=7')
    expect(seen?.body.toString()).toBe('{"n":1}')
    expect(JSON.stringify(seen?.headers)).not.toContain(DEMO_KEY)
  })

  it('takes absolute URLs under the target (an SDK given targetUrl as its base URL)', async () => {
    const client = new FairlaneClient({ baseUrl: fairlane.url + '/', key: DEMO_KEY })
    expect(client.targetUrl('echo')).toBe(`${fairlane.url}/t/echo`)
    const response = await client.fetch(`${client.targetUrl('echo')}/v1/models`)
    expect(response.status).toBe(200)
    expect(upstream.requests.at(-1)?.url).toBe('/v1/models')
  })

  it('accepts a Request as fetch does', async () => {
    const client = new FairlaneClient({ baseUrl: fairlane.url, key: DEMO_KEY })
    const request = new Request(`${client.targetUrl('echo')}/hello`, { method: 'PUT' })
    const response = await client.target('echo')(request)
    expect(response.status).toBe(200)
    expect(upstream.requests.at(-1)).toMatchObject({ method: 'PUT', url: '/hello' })
  })
})

describe("Fairlane's refusals, told from the upstream's answers", () => {
  it('401 unauthenticated for an unknown key', async () => {
    const client = new FairlaneClient({ baseUrl: fairlane.url, key: 'fl_nobody' })
    const response = await client.target('echo')('/x')
    const error = await problemError(response)
    expect(error).toBeInstanceOf(AuthenticationError)
    expect(error).toMatchObject({ status: 401, code: 'unauthenticated', stage: 'authenticate' })
    expect(error?.requestId).toBe(response.headers.get('x-request-id'))
    expect(await response.json()).toMatchObject({ code: 'unauthenticated' })
    expect(upstream.hits).toBe(0)
  })

  it('403 forbidden_target for a target the workspace may not use', async () => {
    const client = new FairlaneClient({ baseUrl: fairlane.url, key: DEMO_KEY })
    const error = await problemError(await client.target('billing')('/x'))
    expect(error).toBeInstanceOf(PermissionDeniedError)
    expect(error?.code).toBe('forbidden_target')
  })

  it('403 destination_blocked for the URL form to a host the workspace has not approved', async () => {
    const client = new FairlaneClient({ baseUrl: fairlane.url, key: DEMO_KEY })
    const error = await problemError(await client.fetch('https://api.example.com/v1/x'))
    expect(error).toBeInstanceOf(PermissionDeniedError)
    expect(error?.code).toBe('destination_blocked')
  })

  it('sends the URL form on a fixed path, so a URL whose path is /t/<target>/… goes to its host', async () => {
    const client = new FairlaneClient({ baseUrl: fairlane.url, key: DEMO_KEY })
    const error = await problemError(await client.fetch('https://api.example.com/t/echo/x'))
    // Fairlane read the URL form (and refused the host), not the target form of target echo.
    expect(error?.code).toBe('destination_blocked')
    expect(upstream.hits).toBe(0)
  })

  it('429 rate_limited with Retry-After, and retries that wait it out', async () => {
    const plain = new FairlaneClient({ baseUrl: fairlane.url, key: INSTANT_KEY })
    // 1 request per second, never queued: one of a few quick requests is refused, however
    // slow the machine.
    let error: Awaited<ReturnType<typeof problemError>>
    for (let i = 0; i < 5 && !error; i++)
      error = await problemError(await plain.target('echo')('/a'))
    expect(error).toBeInstanceOf(RateLimitError)
    expect(error).toMatchObject({ status: 429, code: 'rate_limited', retryable: true })
    expect(error?.retryAfter).toBeGreaterThanOrEqual(1)

    const patient = new FairlaneClient({ baseUrl: fairlane.url, key: INSTANT_KEY, retries: 3 })
    const body = JSON.stringify({ again: true })
    const served = await patient.target('echo')('/c', { method: 'POST', body })
    expect(served.status).toBe(200)
    const sent = upstream.requests.filter((r) => r.url === '/c')
    expect(sent).toHaveLength(1)
    expect(sent[0]?.body.toString()).toBe(body)
  })

  it('leaves a refusal alone when its Retry-After is longer than the client waits', async () => {
    const client = new FairlaneClient({
      baseUrl: fairlane.url,
      key: INSTANT_KEY,
      retries: 3,
      maxRetryWaitMs: 0,
    })
    const echo = client.target('echo')
    const statuses = [(await echo('/d')).status, (await echo('/e')).status]
    expect(statuses).toContain(429)
  })

  it("passes the upstream's own 429 through: not Fairlane's refusal, never retried", async () => {
    upstream.behave(() => ({
      kind: 'respond',
      status: 429,
      headers: { 'content-type': 'text/plain', 'retry-after': '1' },
      body: 'slow down',
    }))
    const client = new FairlaneClient({ baseUrl: fairlane.url, key: DEMO_KEY, retries: 3 })
    const response = await client.target('echo')('/busy', { method: 'POST', body: 'x' })
    expect(response.status).toBe(429)
    expect(await problemError(response)).toBeUndefined()
    expect(await response.text()).toBe('slow down')
    expect(upstream.requests.filter((r) => r.url === '/busy')).toHaveLength(1)
  })
})
