import type { Contender, DeployOptions, Deployment } from './contender.ts'
import {
  GENERATED_LOG_LEVEL,
  fairlaneNotes,
  launchFairlane,
  writeBenchConfig,
} from './fairlane-embedded.ts'

/**
 * Fairlane embedded in inbound mode: in front of "your API" with a route and no Fairlane
 * key, each tenant a lane by its own Authorization token (hashed), limited per caller. The
 * requests are the other systems' own: the same Authorization header, keyed the same way.
 */
export const fairlaneInbound: Contender = {
  name: 'fairlane-inbound',
  description: 'Fairlane embedded, inbound mode: a route, a lane per Authorization token, no key',
  limiter: 'fairlane',
  maxInstances: 1,
  check: async () => undefined,
  facts: async () => ({ mode: 'embedded, inbound routes', logging: GENERATED_LOG_LEVEL }),
  async start(options: DeployOptions): Promise<Deployment> {
    if (options.instances !== 1) throw new Error('Fairlane embedded is one process')
    const configPath = await writeBenchConfig(
      {
        upstreamUrl: options.upstream.url,
        tenants: options.tenants,
        inbound: true,
        ...(options.limit ? { limit: options.limit } : {}),
        ...(options.upstreamConcurrency
          ? { upstreamConcurrency: options.upstreamConcurrency }
          : {}),
      },
      'fairlane-inbound.json',
    )
    const fairlane = await launchFairlane(configPath, { name: 'fairlane-inbound' })
    const limit = options.limit
    return {
      bases: [fairlane.proxyUrl],
      pids: { fairlane: fairlane.child.pid },
      children: [fairlane.child],
      notes: [
        ...fairlaneNotes({}, GENERATED_LOG_LEVEL),
        'routes: / to the target, callers by the Authorization token (SHA-256), no Fairlane key',
        'new callers: callers.newCallers at its default, 200/s with a burst of 2,000 per node; ' +
          'a new caller beyond it is refused with 429 before any lane or upstream call',
        limit
          ? `rate limit per caller ${limit.rps}/s, burst ${limit.burst} (GCRA); over it requests ` +
            'wait in their lane (bounded: queue.perLane 100, tier maxWait), then 429'
          : 'caller limits far above the load (1,000,000/s, and as many in flight)',
        ...(options.upstreamConcurrency
          ? [
              `target concurrency ${options.upstreamConcurrency.limit}, headroom ` +
                `${options.upstreamConcurrency.headroom}, fair queueing (as examples/inbound.yaml)`,
            ]
          : []),
      ],
      stop: () => fairlane.stop(),
    }
  },
}
