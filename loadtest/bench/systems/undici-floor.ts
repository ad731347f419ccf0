import { fileURLToPath } from 'node:url'
import { launch, NODE } from '../lib/child.ts'
import type { Upstream } from '../lib/upstream.ts'
import { waitForHttp } from './contender.ts'
import type { System } from './system.ts'

const ENTRY = fileURLToPath(new URL('./undici-floor-process.ts', import.meta.url))

/**
 * `node:http` + undici with nothing else in between (undici-floor-process.ts): what a request
 * through Fairlane's design costs before any of Fairlane's own work.
 */
export async function undiciFloor(upstream: Upstream): Promise<System> {
  const child = launch('floor', NODE, [ENTRY, '--upstream', upstream.url], { probe: true })
  try {
    const [, port] = await child.waitForLine(/^\{"port":(\d+)\}$/, 15_000)
    const base = `http://127.0.0.1:${port}`
    await waitForHttp(`${base}/`, [child])
    return {
      name: 'floor',
      request: { url: `${base}/bench`, headers: { authorization: 'Bearer unused' } },
      processes: { floor: child },
      notes: ['node:http + undici Agent.request, nothing else: the floor of Fairlane’s design'],
      stop: () => child.stop(),
    }
  } catch (err) {
    await child.stop()
    throw err
  }
}
