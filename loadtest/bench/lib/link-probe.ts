import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { percentileOf, startTcpRelay, type TcpRelay } from '@fairlane/testing'

/** The probe sends its byte at most this often, one in flight at a time. */
const INTERVAL_MS = 20

/**
 * The round trip the bench's emulated link really gives: one byte at a time through a relay
 * like those between the regions (same delay, same process, so its timers run late as theirs
 * do under load) to an echo server and back. A relay holds each chunk at least its delay,
 * and its timers fire later still when the bench's own process is busy sending load: "one
 * RTT" in the cross-region figures is this, beside the nominal twice the delay.
 */
export interface LinkProbe {
  /** Forgets the samples so far. */
  reset(): void
  /** Nearest-rank median of the samples since the last reset (ms); NaN for none. */
  p50(): number
  stop(): Promise<void>
}

export async function startLinkProbe(oneWayMs: number): Promise<LinkProbe> {
  const echo: Server = createServer((socket) => {
    // The relay resets its side when it closes.
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
  let relay: TcpRelay | undefined
  let client: Socket | undefined
  try {
    relay = await startTcpRelay({
      target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port },
      delayMs: oneWayMs,
    })
    const port = relay.port
    client = await new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket))
      socket.once('error', reject)
    })
  } catch (err) {
    client?.destroy()
    await relay?.close()
    echo.close()
    throw err
  }
  client.setNoDelay(true)
  client.on('error', () => undefined)
  let samples: number[] = []
  let sentAt: number | undefined
  client.on('data', () => {
    if (sentAt !== undefined) samples.push(performance.now() - sentAt)
    sentAt = undefined
  })
  const timer = setInterval(() => {
    // One byte in flight at a time: a late answer is waited for, not overlapped.
    if (sentAt !== undefined) return
    sentAt = performance.now()
    client.write('.')
  }, INTERVAL_MS)
  const openRelay = relay
  return {
    reset: () => {
      samples = []
    },
    p50: () => percentileOf(samples, 50),
    stop: async () => {
      clearInterval(timer)
      client.destroy()
      await openRelay.close()
      await new Promise<void>((resolve) => echo.close(() => resolve()))
    },
  }
}
