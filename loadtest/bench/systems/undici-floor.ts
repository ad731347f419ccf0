import { fileURLToPath } from 'node:url'
import { packageVersion } from '../lib/package-version.ts'
import type { Upstream } from '../lib/upstream.ts'
import type { Contender, Deployment, DeployOptions } from './contender.ts'
import { startPortServer } from './port-server.ts'
import type { System } from './system.ts'

const ENTRY = fileURLToPath(new URL('./undici-floor-process.ts', import.meta.url))
const NOTE = 'node:http + undici Agent.request, nothing else: the floor of Fairlane’s design'

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
    notes: [NOTE],
    stop: () => child.stop(),
  }
}

/**
 * The same floor as a contender of `npm run bench` (pass-through only): what any proxy built
 * on Node's HTTP server and undici pays on this machine, beside the systems that add to it.
 */
export const floorContender: Contender = {
  name: 'floor',
  description: 'node:http + undici Agent.request, nothing else',
  limiter: 'none',
  maxInstances: 1,
  check: () => Promise.resolve(undefined),
  facts: () =>
    Promise.resolve({
      node: process.version,
      undici: packageVersion('undici') ?? 'missing',
    }),
  async start(options: DeployOptions): Promise<Deployment> {
    const { child, base } = await startPortServer('floor', ENTRY, [
      '--upstream',
      options.upstream.url,
    ])
    return {
      bases: [base],
      pids: { floor: child.pid },
      children: [child],
      notes: [NOTE],
      stop: () => child.stop(),
    }
  },
}
