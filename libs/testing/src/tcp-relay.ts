import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

export interface TcpRelayOptions {
  /** Where every accepted connection is forwarded. */
  readonly target: { readonly host: string; readonly port: number }
  /** Each chunk is held this long before it is passed on, in both directions. Default 0. */
  readonly delayMs?: number
  /** Listen address. Default 127.0.0.1. */
  readonly host?: string
}

export interface TcpRelay {
  readonly port: number
  /** Connections carried right now. */
  readonly connections: number
  /** Destroys every carried connection and resets each new one at once, until `restore`. */
  cut(): void
  restore(): void
  /** Applies to chunks that arrive from now on; earlier chunks keep their place in line. */
  setDelay(ms: number): void
  close(): Promise<void>
}

/**
 * A TCP relay on a free loopback port, standing between two things a test wants apart: it
 * delays traffic (this kernel has no netem to do it) and cuts it on command, so the same relay
 * gives WAN latency and partition tests.
 */
export async function startTcpRelay(options: TcpRelayOptions): Promise<TcpRelay> {
  let delayMs = checkedDelay(options.delayMs ?? 0)
  let cut = false
  const pairs = new Set<{ inbound: Socket; outbound: Socket }>()

  // Half-open on both sides: a FIN is passed on only after the chunks before it, so a delayed
  // answer is not lost when the client has already finished sending.
  const server = createServer({ allowHalfOpen: true }, (inbound) => {
    if (cut) {
      inbound.resetAndDestroy()
      return
    }
    const outbound = connect({ ...options.target, allowHalfOpen: true })
    const pair = { inbound, outbound }
    pairs.add(pair)
    // A failure on either side resets the other, as a reset passes through a real network. A
    // clean close needs nothing: each FIN already follows the last chunk before it.
    const fail = () => {
      pairs.delete(pair)
      reset(inbound)
      reset(outbound)
    }
    for (const socket of [inbound, outbound]) {
      socket.setNoDelay(true)
      socket.on('error', fail)
      socket.on('close', () => {
        if (inbound.destroyed && outbound.destroyed) pairs.delete(pair)
      })
    }
    forward(inbound, outbound, () => delayMs)
    forward(outbound, inbound, () => delayMs)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, options.host ?? '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo

  const destroyAll = () => {
    for (const { inbound, outbound } of pairs) {
      reset(inbound)
      reset(outbound)
    }
    pairs.clear()
  }

  return {
    port,
    get connections() {
      return pairs.size
    },
    cut() {
      cut = true
      destroyAll()
    },
    restore() {
      cut = false
    },
    setDelay(ms) {
      delayMs = checkedDelay(ms)
    },
    close() {
      cut = true
      destroyAll()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

function reset(socket: Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy()
}

function checkedDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`delayMs: must be a finite number of milliseconds >= 0 (got ${ms})`)
  }
  return ms
}

/**
 * Copies `from` to `to`, each chunk due `delay()` ms after it arrived. Chunks leave in arrival
 * order even when the delay shrinks meanwhile: a chunk never overtakes the one before it.
 */
function forward(from: Socket, to: Socket, delay: () => number): void {
  const queue: Array<{ due: number; chunk: Buffer }> = []
  let timer: NodeJS.Timeout | undefined
  let ended = false
  let draining = false

  const write = (chunk: Buffer) => {
    if (to.destroyed || to.write(chunk) || draining) return
    draining = true
    from.pause()
    to.once('drain', () => {
      draining = false
      from.resume()
    })
  }
  const endIfDone = () => {
    if (ended && queue.length === 0 && !to.destroyed) to.end()
  }
  const pump = () => {
    timer = undefined
    const now = performance.now()
    for (let head = queue[0]; head !== undefined && head.due <= now; head = queue[0]) {
      queue.shift()
      write(head.chunk)
    }
    const next = queue[0]
    if (next === undefined) endIfDone()
    else timer = setTimeout(pump, next.due - now)
  }

  from.on('data', (chunk: Buffer) => {
    const ms = delay()
    if (ms === 0 && queue.length === 0) {
      write(chunk)
      return
    }
    queue.push({ due: performance.now() + ms, chunk })
    timer ??= setTimeout(pump, ms)
  })
  from.on('end', () => {
    ended = true
    endIfDone()
  })
  to.on('close', () => {
    clearTimeout(timer)
    queue.length = 0
  })
}
