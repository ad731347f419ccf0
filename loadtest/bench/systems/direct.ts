import type { Upstream } from '../lib/upstream.ts'
import type { Contender, DeployOptions, Deployment } from './contender.ts'
import type { System } from './system.ts'

/** The upstream with nothing in front: the baseline every proxy is compared to. */
export function direct(upstream: Upstream): System {
  return {
    name: 'direct',
    request: { url: `${upstream.url}/bench`, headers: {} },
    // The upstream is shared with the systems in front of it, so it is the bench's to stop.
    processes: {},
    notes: [],
    stop: async () => {},
  }
}

/** The same, as a contender of `npm run bench`. */
export const directContender: Contender = {
  name: 'direct',
  description: 'the upstream itself, no proxy (the floor)',
  limiter: 'none',
  maxInstances: 1,
  check: async () => undefined,
  facts: async () => ({}),
  start(options: DeployOptions): Promise<Deployment> {
    return Promise.resolve({
      bases: [options.upstream.url],
      // The upstream is the scenario's, watched by it under the role `upstream`.
      pids: {},
      children: [],
      notes: [],
      stop: async () => {},
    })
  },
}
