import { describe, expect, it, vi } from 'vitest'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createLogger, RequestLines } from './logger.ts'

function capture() {
  let text = ''
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString()
      callback()
    },
  })
  return { destination, text: () => text }
}

describe('createLogger', () => {
  it('redacts secrets by configuration, even when someone logs a whole header bag', () => {
    const out = capture()
    const logger = createLogger({ level: 'info', destination: out.destination })
    logger.info(
      {
        headers: {
          authorization: 'Bearer s3cret-a',
          'x-fairlane-key': 's3cret-b',
          cookie: 's3cret-c',
        },
        upstream: { headers: { authorization: 's3cret-d' }, body: 's3cret-e' },
        token: 's3cret-f',
        query: 'token=s3cret-g',
      },
      'oops',
    )
    const text = out.text()
    for (const secret of [
      's3cret-a',
      's3cret-b',
      's3cret-c',
      's3cret-d',
      's3cret-e',
      's3cret-f',
      's3cret-g',
    ]) {
      expect(text).not.toContain(secret)
    }
    expect(text).toContain('[redacted]')
  })

  it('logs a request object as method and path only, never its query', () => {
    const out = capture()
    const logger = createLogger({ level: 'info', destination: out.destination })
    logger.warn(
      { req: { method: 'GET', url: '/t/x/y?api_key=s3cret-h', headers: { a: 1 } } },
      'stream error',
    )
    const line = JSON.parse(out.text()) as { req: unknown }
    expect(line.req).toEqual({ method: 'GET', path: '/t/x/y' })
  })
  it('stamps each line with the ISO time of its own millisecond', () => {
    const out = capture()
    const logger = createLogger({ level: 'info', destination: out.destination })
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      const times: string[] = []
      for (const at of [1_000, 1_000, 1_001, 61_001, 61_001]) {
        vi.setSystemTime(Date.UTC(2026, 11, 4, 18, 0, 0, 0) + at)
        logger.info('tick')
        times.push(new Date(Date.now()).toISOString())
      }
      const logged = out
        .text()
        .trim()
        .split('\n')
        .map((text) => (JSON.parse(text) as { time: string }).time)
      expect(logged).toEqual(times)
      expect(new Set(logged).size).toBe(3)
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('RequestLines', () => {
  const fields = {
    requestId: 'r-1 "quoted" \\ back\nslash \u2028',
    method: 'GET',
    path: '/t/x/\u00e9t\u00e9',
    keyId: undefined,
    status: 200,
    durationMs: 1.25,
    queueMs: Number.NaN,
    clientClosed: false,
    retried: true,
  }

  it('writes the line pino itself would write for the same fields, byte for byte', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.UTC(2026, 11, 5, 1, 0, 0, 0))
      const viaPino = capture()
      createLogger({ level: 'info', destination: viaPino.destination, base: { node: 'n-1' } })
        .child({}, { redact: { paths: [], censor: '[redacted]' } })
        .info(fields, 'request')
      const direct = capture()
      const lines = new RequestLines(
        createLogger({ level: 'info', destination: direct.destination, base: { node: 'n-1' } }),
      )
      lines.write(fields, 'request')
      expect(direct.text()).toBe(viaPino.text())
      expect(JSON.parse(direct.text())).toMatchObject({ level: 'info', node: 'n-1', status: 200 })
    } finally {
      vi.useRealTimers()
    }
  })

  it('writes each string as JSON.stringify does, the ones it quotes as they are included', () => {
    // One string per class JSON.stringify escapes, and the ones it leaves as they are.
    const strings = [
      '9376e042-e4cb-44e4-99fd-da0378230e2a',
      '/t/echo/bench?x=1',
      'a"b',
      'a\\b',
      '\u0000',
      '\u0001',
      '\u001f',
      'tab\there',
      'line\nend',
      'del \u007f, separators \u2028 \u2029, \u00e9t\u00e9',
      'pair \ud83d\ude00',
      'lone high \ud800',
      'lone low \udc00',
      '\udfff',
      '',
    ]
    const out = capture()
    const lines = new RequestLines(createLogger({ level: 'info', destination: out.destination }))
    lines.write(Object.fromEntries(strings.map((value, i) => [`f${i}`, value])), 'request')
    for (const [i, value] of strings.entries())
      expect(out.text()).toContain(`"f${i}":${JSON.stringify(value)},`)
  })

  it('writes a field the same whatever kind of value it had in the lines before', () => {
    // Each key's opening is made once: a key that changes kind must not take another's.
    const kinds = [
      { a: 'plain', b: 1, c: true },
      { a: 'needs "escaping"', b: 'plain', c: Number.POSITIVE_INFINITY },
      { a: 2.5, b: undefined, c: 'tab\there' },
      { a: undefined, b: 'x', c: 'plain' },
      { a: 'plain', b: false, c: -0 },
    ]
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.UTC(2026, 11, 5, 1, 0, 0, 0))
      const viaPino = capture()
      const logger = createLogger({ level: 'info', destination: viaPino.destination }).child(
        {},
        { redact: { paths: [], censor: '[redacted]' } },
      )
      for (const fields of kinds) logger.info(fields, 'request')
      const direct = capture()
      const lines = new RequestLines(
        createLogger({ level: 'info', destination: direct.destination }),
      )
      for (const fields of kinds) lines.write(fields, 'request')
      expect(direct.text()).toBe(viaPino.text())
      expect(
        direct
          .text()
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l).a),
      ).toEqual(['plain', 'needs "escaping"', 2.5, undefined, 'plain'])
    } finally {
      vi.useRealTimers()
    }
  })

  it('is off below info, and follows a level changed later', () => {
    const out = capture()
    const logger = createLogger({ level: 'warn', destination: out.destination })
    const lines = new RequestLines(logger)
    expect(lines.enabled).toBe(false)
    logger.level = 'info'
    expect(lines.enabled).toBe(true)
  })

  it('writes through pino when the logger changes its lines (a mixin)', () => {
    const out = capture()
    const logger = pino({ mixin: () => ({ mixed: 1 }) }, out.destination)
    new RequestLines(logger).write({ status: 200 }, 'request')
    expect(JSON.parse(out.text())).toMatchObject({ mixed: 1, status: 200, msg: 'request' })
  })
})
