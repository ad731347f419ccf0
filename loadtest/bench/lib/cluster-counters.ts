/**
 * What a cluster's nodes count of their NATS traffic (docs/operations.md#metrics), summed
 * over the nodes: where admissions came from, what owners lent, and the messages sent.
 */
export interface ClusterCounters {
  /** Admissions from a leased share (no NATS round trip). */
  readonly local: number
  /** Admissions answered by the lane's owner over NATS. */
  readonly owner: number
  readonly lent: number
  readonly returned: number
  readonly revoked: number
  /** NATS messages sent to shard owners, and the items in them. */
  readonly toOwnerMessages: number
  readonly toOwnerItems: number
  /** NATS messages owners sent to ingress nodes, and the items in them. */
  readonly toIngressMessages: number
  readonly toIngressItems: number
}

const SERIES: Readonly<Record<keyof ClusterCounters, string>> = {
  local: 'fairlane_cluster_admissions_total{path="local"}',
  owner: 'fairlane_cluster_admissions_total{path="owner"}',
  lent: 'fairlane_cluster_share_events_total{event="lent"}',
  returned: 'fairlane_cluster_share_events_total{event="returned"}',
  revoked: 'fairlane_cluster_share_events_total{event="revoked"}',
  toOwnerMessages: 'fairlane_cluster_batch_items_count{direction="to_owner"}',
  toOwnerItems: 'fairlane_cluster_batch_items_sum{direction="to_owner"}',
  toIngressMessages: 'fairlane_cluster_batch_items_count{direction="to_ingress"}',
  toIngressItems: 'fairlane_cluster_batch_items_sum{direction="to_ingress"}',
}

const ZERO = Object.fromEntries(Object.keys(SERIES).map((key) => [key, 0])) as Record<
  keyof ClusterCounters,
  number
>

/** The counters summed over the nodes whose `/metrics` are at `metricsUrls`. */
export async function clusterCounters(metricsUrls: readonly string[]): Promise<ClusterCounters> {
  const total = { ...ZERO }
  const texts = await Promise.all(metricsUrls.map(async (url) => (await fetch(url)).text()))
  for (const text of texts) {
    for (const line of text.split('\n')) {
      for (const [key, series] of Object.entries(SERIES) as [keyof ClusterCounters, string][]) {
        if (line.startsWith(`${series} `)) total[key] += Number(line.slice(series.length + 1))
      }
    }
  }
  return total
}

/** What was counted between two readings. */
export function countedBetween(before: ClusterCounters, after: ClusterCounters): ClusterCounters {
  const diff = { ...ZERO }
  for (const key of Object.keys(SERIES) as (keyof ClusterCounters)[])
    diff[key] = after[key] - before[key]
  return diff
}
