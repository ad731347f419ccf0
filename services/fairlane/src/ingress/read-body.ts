import { addAbortSignal } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { BodyDeadline } from './body-deadline.ts'
import { tooLarge } from './body-limit.ts'
import type { Exchange } from './exchange.ts'

/**
 * The whole request body, read before admission (bounded by maxBodyBytes and the body
 * timeouts); a client that leaves stops the read.
 */
export async function readBody(x: Exchange): Promise<Buffer> {
  const { server } = x.config
  const deadline = new BodyDeadline(x.req, {
    idleMs: server.bodyIdleMs,
    totalMs: server.bodyTimeoutMs,
    now: () => performance.now(),
    onExpire: () => undefined,
  })
  x.bodyDeadline = deadline
  addAbortSignal(x.abort.signal, deadline)
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of x.req.pipe(deadline) as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > server.maxBodyBytes) throw tooLarge(server.maxBodyBytes, 'resolve')
      chunks.push(chunk)
    }
  } catch (err) {
    throw deadline.failure ?? err
  }
  return Buffer.concat(chunks, size)
}
