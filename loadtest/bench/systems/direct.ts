import type { Upstream } from '../lib/upstream.ts'
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
