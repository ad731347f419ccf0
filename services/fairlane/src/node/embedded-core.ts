import { performance } from 'node:perf_hooks'
import type { ConfigStore } from '@fairlane/config'
import { QueueActor } from '@fairlane/actor'
import { InProcessTransport } from '@fairlane/cluster'
import { MemoryLedger } from '@fairlane/limits'
import { NodeQueueBudget } from '@fairlane/scheduler'
import type { FairlaneMetrics } from '@fairlane/telemetry'
import { ticketPolicy } from '../limits/scopes.ts'
import type { NodeCore } from './node-core.ts'

/** Every role in one process: the queue actor and the in-memory ledger behind a function call. */
export function embeddedCore(store: ConfigStore, metrics: FairlaneMetrics): NodeCore {
  const now = () => performance.now()
  const ledger = new MemoryLedger({ now, maxStates: () => store.current().limits.maxStates })
  const actor = new QueueActor({
    ledger,
    now,
    budget: new NodeQueueBudget(store.current().queue.perNode),
    policyFor: (ticket) => ticketPolicy(store.current(), ticket),
  })
  metrics.observeQueued(() => actor.queued)
  metrics.observeLimitStates(() => ledger.size)
  // Limit state of callers gone quiet is dropped, so memory follows the active callers.
  const sweeper = setInterval(() => ledger.sweep(), 10_000)
  sweeper.unref()
  const transport = new InProcessTransport(actor)
  return {
    transport,
    mode: 'embedded',
    async close() {
      clearInterval(sweeper)
      await actor.close()
      await transport.close()
    },
  }
}
