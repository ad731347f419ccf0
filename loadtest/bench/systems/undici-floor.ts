import { fileURLToPath } from 'node:url'
import type { Upstream } from '../lib/upstream.ts'
import { startPortServer } from './port-server.ts'
import type { System } from './system.ts'

const ENTRY = fileURLToPath(new URL('./undici-floor-process.ts', import.meta.url))

/**
 * `node:http` + undici with nothing else in between (undici-floor-process.ts): what a request
 * through Fairlane's design costs before any of Fairlane's own work.
 */
export async function undiciFloor(upstream: Upstream): Promise<System> {
  const { child, base } = await startPortServer('floor', ENTRY, ['--upstream', upstream.url])
  return {
    name: 'floor',
    request: { url: `${base}/bench`, headers: { authorization: 'Bearer unused' } },
    processes: { floor: child },
    notes: ['node:http + undici Agent.request, nothing else: the floor of Fairlane’s design'],
    stop: () => child.stop(),
  }
}
