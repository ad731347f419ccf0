import { describe, expect, it } from 'vitest'
import { checkRequestHead } from './correlate.ts'
import { exchangeFor, stageConfig } from './exchange-fixture.ts'

describe('correlate', () => {
  it('keeps a sane X-Request-Id and continues the client trace', () => {
    const x = exchangeFor({
      url: '/t/echo/a?secret=1',
      headers: {
        'x-request-id': 'req-123',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
    })
    expect(x.requestId).toBe('req-123')
    expect(x.trace.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    expect(x.trace.spanId).not.toBe('00f067aa0ba902b7')
    expect(x.path).toBe('/t/echo/a')
    expect(x.stage).toBe('correlate')
  })

  it('makes a request id and a new trace when the client sends none', () => {
    const x = exchangeFor({})
    expect(x.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(x.trace.traceId).toMatch(/^[0-9a-f]{32}$/)
  })

  it('refuses a malformed percent-escape without echoing the target', () => {
    const x = exchangeFor({ url: '/t/%zz/x?token=abc' })
    expect(() => checkRequestHead(x)).toThrow(
      expect.objectContaining({ code: 'bad_request', stage: 'correlate' }),
    )
    try {
      checkRequestHead(x)
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('token')
    }
  })

  it('refuses a declared body above server.maxBodyBytes before anything else', () => {
    const x = exchangeFor(
      { headers: { 'content-length': '2048' } },
      stageConfig({ server: { maxBodyBytes: 1024 } }),
    )
    expect(() => checkRequestHead(x)).toThrow(
      expect.objectContaining({ code: 'payload_too_large', stage: 'correlate' }),
    )
    expect(() => checkRequestHead(exchangeFor({ url: '/t/echo/a%20b' }))).not.toThrow()
  })
})
