import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'

/**
 * What a bench server process does once it listens: prints `{"port":N}` for its parent, and
 * closes once on SIGTERM, SIGINT or its stdin closing (the parent gone), then exits.
 */
export function serveUntilStopped(
  address: AddressInfo | string | null,
  close: () => Promise<unknown>,
): void {
  const port = typeof address === 'object' && address ? address.port : 0
  process.stdout.write(JSON.stringify({ port }) + '\n')
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    void close().finally(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  createInterface({ input: process.stdin }).on('close', stop)
}
