import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configFromValue } from '@fairlane/config'
import { FairlaneError } from '@fairlane/protocol'
import { correlate } from './correlate.ts'
import { respond, sendProblem } from './respond.ts'

let server: Server
let base: string

beforeAll(async () => {
  const config = configFromValue({}, {}, 'respond test')
  server = createServer((req, res) => {
    const x = correlate(req, res, config)
    if (req.url === '/refused-upstream') {
      // An upstream header Node will not send: the answer becomes a problem.
      void respond(x, {
        status: 200,
        headers: { 'x-upstream': 'a\u0001b', 'content-length': '2' },
        body: Readable.from([]),
        whole: Promise.resolve(Buffer.from('ok')),
      })
      return
    }
    x.limitHeaders =
      req.url === '/refused-problem'
        ? { 'ratelimit-policy': 'a\u0001b' }
        : { 'ratelimit-policy': '"key";q=10;w=1' }
    res.setHeader('x-upstream-only', 'yes')
    sendProblem(x, new FairlaneError('rate_limited', 'limit', 'key rate limit reached'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('respond: problems', () => {
  it('answers problem+json with the request id and RateLimit headers, nothing of a relay', async () => {
    const response = await fetch(`${base}/x`, { headers: { 'x-request-id': 'abc-1' } })
    expect(response.status).toBe(429)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(response.headers.get('x-request-id')).toBe('abc-1')
    expect(response.headers.get('ratelimit-policy')).toBe('"key";q=10;w=1')
    expect(response.headers.get('x-upstream-only')).toBeNull()
    expect(await response.json()).toMatchObject({
      code: 'rate_limited',
      stage: 'limit',
      requestId: 'abc-1',
      error: 'Rate limit exceeded',
    })
  })

  it('answers an upstream answer Node refuses to write with a problem of its own', async () => {
    const response = await fetch(`${base}/refused-upstream`)
    expect(response.status).toBe(500)
    expect(response.statusText).toBe('Internal Server Error')
    expect(response.headers.get('x-upstream')).toBeNull()
    expect(await response.json()).toMatchObject({ code: 'internal', stage: 'respond' })
  })

  it('cuts the connection when Node refuses the problem answer too, once', async () => {
    await expect(fetch(`${base}/refused-problem`)).rejects.toThrow()
    // The server still answers: nothing was left trying the same answer turn after turn.
    expect((await fetch(`${base}/x`)).status).toBe(429)
  })
})
