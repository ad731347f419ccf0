import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { BodyDeadline } from './body-deadline.ts'

function watch(idleMs: number, totalMs: number) {
  const source = new PassThrough()
  const expired: string[] = []
  const deadline = new BodyDeadline(source, {
    idleMs,
    totalMs,
    now: () => performance.now(),
    onExpire: () => expired.push('expired'),
  })
  source.pipe(deadline)
  return { source, deadline, expired }
}

describe('BodyDeadline', () => {
  it('fails a body whose client goes silent, and says so once', async () => {
    const { source, deadline, expired } = watch(50, 10_000)
    deadline.resume()
    source.write('a')
    await sleep(300)
    expect(expired).toEqual(['expired'])
    expect(deadline.failure).toMatchObject({ code: 'request_timeout', stage: 'forward' })
    expect(deadline.destroyed).toBe(true)
  })

  it('does not blame the client for bytes that wait because the reader is slow', async () => {
    const { source, deadline, expired } = watch(50, 10_000)
    // Nobody reads the deadline's output: what the client sent piles up on our side.
    for (let i = 0; i < 8; i++) source.write(Buffer.alloc(16 * 1024))
    await sleep(300)
    expect(expired).toEqual([])
    deadline.destroy()
  })

  it('fails a body that keeps trickling past the whole-body time', async () => {
    const { source, deadline } = watch(100, 200)
    deadline.resume()
    const timer = setInterval(() => source.write('a'), 20)
    await sleep(500)
    clearInterval(timer)
    expect(deadline.failure?.message).toBe('the request body did not arrive whole within 200 ms')
  })

  it('stops watching once the body is complete', async () => {
    const { source, deadline, expired } = watch(50, 100)
    deadline.resume()
    source.end('all of it')
    await sleep(250)
    expect(expired).toEqual([])
    expect(deadline.failure).toBeUndefined()
  })
})
