import { describe, expect, it } from 'vitest'
import { Writable } from 'node:stream'
import { createLogger } from './logger.ts'

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
})
