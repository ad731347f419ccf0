import type { NodeConnectionOptions } from '@nats-io/transport-node'

/**
 * How a node connects to NATS: every server of the comma-separated URL, named after the node,
 * reconnecting for as long as it runs.
 *
 * `noAsyncTraces`: by default nats.js builds an Error at every request (each shard-lease
 * rewrite, every KV write) and a TimeoutError for its timer, only to have a stack ready if
 * it fails: about 1% of a cluster node's CPU at 1000 req/s over three nodes, on the
 * rewrites alone, and garbage for every one. A failure still says what failed; its stack
 * then starts at the NATS client instead of at the caller.
 */
export function natsConnectOptions(natsUrl: string, nodeId: string): NodeConnectionOptions {
  return {
    servers: natsUrl.split(','),
    name: `fairlane-${nodeId}`,
    maxReconnectAttempts: -1,
    timeout: 2_000,
    noAsyncTraces: true,
  }
}
