import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * The metrics of one Fairlane node. Labels are bounded sets (target names from config, status
 * codes, stages, scope kinds): never a key, URL or request id.
 */
/** What the metrics read of an upstream endpoint's health. */
export interface EndpointState {
  readonly target: string
  readonly endpoint: string
  readonly region: string | null
  readonly state: 'closed' | 'open' | 'half-open'
}

export class FairlaneMetrics {
  readonly registry: Registry
  readonly requests: Counter<'target' | 'status' | 'stage'>
  readonly requestDuration: Histogram<'target'>
  readonly upstreamDuration: Histogram<'target'>
  readonly limitRefusals: Counter<'scope' | 'reason'>
  readonly queueWait: Histogram<'target'>
  readonly queueRefusals: Counter<'target' | 'reason' | 'bound'>
  readonly queued: Gauge
  readonly limitStates: Gauge
  readonly ledgerDownDecisions: Counter<'scope' | 'policy'>
  readonly ledgerUp: Gauge
  readonly shardsOwned: Gauge
  readonly natsConnected: Gauge
  readonly clusterBatchItems: Histogram<'direction'>
  readonly clusterRoundTrip: Histogram
  readonly clusterRefused: Counter<'side' | 'reason'>
  readonly clusterAdmissions: Counter<'path'>
  readonly clusterShares: Counter<'event'>
  readonly endpointCircuitOpen: Gauge<'target' | 'endpoint' | 'region'>
  #endpointsSource: () => readonly EndpointState[] = () => []
  #queuedSource: () => number = () => 0
  #limitStatesSource: () => number = () => 0
  #ledgerUpSource: () => number = () => 1
  #shardsSource: () => number = () => 0
  #natsSource: () => number = () => 1

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry()
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'fairlane_' })
    }
    this.requests = new Counter({
      name: 'fairlane_requests_total',
      help: 'Requests answered by the proxy, by target, HTTP status and the stage that answered.',
      labelNames: ['target', 'status', 'stage'],
      registers: [this.registry],
    })
    this.requestDuration = new Histogram({
      name: 'fairlane_request_duration_seconds',
      help: 'Time from request arrival until the response is complete (body included), by target.',
      labelNames: ['target'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    })
    this.upstreamDuration = new Histogram({
      name: 'fairlane_upstream_duration_seconds',
      help: 'Time from sending the upstream request to its response headers, by target.',
      labelNames: ['target'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    })
    this.limitRefusals = new Counter({
      name: 'fairlane_limit_refusals_total',
      help: 'Requests refused by a limit, by the scope that refused and why (rate or concurrency).',
      labelNames: ['scope', 'reason'],
      registers: [this.registry],
    })
    this.queueWait = new Histogram({
      name: 'fairlane_queue_wait_seconds',
      help: 'Time admitted requests waited in their lane, by target.',
      labelNames: ['target'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    })
    this.queueRefusals = new Counter({
      name: 'fairlane_queue_refusals_total',
      help: 'Requests refused by the queue: queue_full (by the bound that was full) or queue_timeout.',
      labelNames: ['target', 'reason', 'bound'],
      registers: [this.registry],
    })
    const source = () => this.#queuedSource()
    this.queued = new Gauge({
      name: 'fairlane_queued_requests',
      help: 'Requests waiting in lanes on this node right now.',
      registers: [this.registry],
      collect() {
        this.set(source())
      },
    })
    const states = () => this.#limitStatesSource()
    this.limitStates = new Gauge({
      name: 'fairlane_limit_states',
      help: 'Limit states (one per scope in use: a caller, a key, a workspace, a target) held in this node’s memory right now; bounded by limits.maxStates.',
      registers: [this.registry],
      collect() {
        this.set(states())
      },
    })
    this.ledgerDownDecisions = new Counter({
      name: 'fairlane_ledger_down_decisions_total',
      help: 'Cluster mode: decisions on a shared scope taken under its onLedgerDown policy (local, open, closed) while Redis was unreachable, by scope kind.',
      labelNames: ['scope', 'policy'],
      registers: [this.registry],
    })
    const ledgerUp = () => this.#ledgerUpSource()
    this.ledgerUp = new Gauge({
      name: 'fairlane_ledger_up',
      help: 'Cluster mode: 1 while the shared ledger (Redis) answers, 0 while scopes follow onLedgerDown.',
      registers: [this.registry],
      collect() {
        this.set(ledgerUp())
      },
    })
    const endpoints = () => this.#endpointsSource()
    this.endpointCircuitOpen = new Gauge({
      name: 'fairlane_endpoint_circuit_open',
      help: 'Circuit of an upstream endpoint as this node sees it: 0 closed (healthy), 0.5 half-open (trial requests), 1 open (skipped while another endpoint is available).',
      labelNames: ['target', 'endpoint', 'region'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const e of endpoints()) {
          const value = e.state === 'open' ? 1 : e.state === 'half-open' ? 0.5 : 0
          this.set({ target: e.target, endpoint: e.endpoint, region: e.region ?? '' }, value)
        }
      },
    })
    const shards = () => this.#shardsSource()
    this.shardsOwned = new Gauge({
      name: 'fairlane_shards_owned',
      help: 'Cluster mode: queue shards whose lease this node holds.',
      registers: [this.registry],
      collect() {
        this.set(shards())
      },
    })
    const nats = () => this.#natsSource()
    this.natsConnected = new Gauge({
      name: 'fairlane_nats_connected',
      help: 'Cluster mode: 1 while this node is connected to NATS, 0 while it is not (tickets cannot reach their owners).',
      registers: [this.registry],
      collect() {
        this.set(nats())
      },
    })
    this.clusterBatchItems = new Histogram({
      name: 'fairlane_cluster_batch_items',
      help: 'Cluster mode: items per NATS message this node sent, by direction: to_owner (tickets, done, cancel to a shard) or to_ingress (answers and waiting/moved to an ingress node).',
      labelNames: ['direction'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [this.registry],
    })
    this.clusterRoundTrip = new Histogram({
      name: 'fairlane_cluster_ticket_round_trip_seconds',
      help: 'Cluster mode: of each ticket admitted through NATS, the time to its admission less the time it waited in its lane: batching, NATS both ways and the owner’s decision.',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    })
    this.clusterRefused = new Counter({
      name: 'fairlane_cluster_messages_refused_total',
      help: 'Cluster mode: NATS messages this node did not read, by side (owner, ingress) and reason: version (sent by a node of another wire version) or garbled.',
      labelNames: ['side', 'reason'],
      registers: [this.registry],
    })
    this.clusterAdmissions = new Counter({
      name: 'fairlane_cluster_admissions_total',
      help: 'Cluster mode: requests this ingress node admitted, by path: local (from a leased share, no NATS round trip) or owner (answered by the lane’s owner over NATS).',
      labelNames: ['path'],
      registers: [this.registry],
    })
    this.clusterShares = new Counter({
      name: 'fairlane_cluster_share_events_total',
      help: 'Cluster mode, as an owner: admissions lent to ingress nodes in leased shares (event lent), lent admissions given back unused and refunded (returned), and revocations sent to ingress nodes when a partition’s ticket had to wait (revoked).',
      labelNames: ['event'],
      registers: [this.registry],
    })
  }

  /** Where the endpoint circuit gauge reads the health of upstream endpoints at scrape time. */
  observeEndpoints(source: () => readonly EndpointState[]): void {
    this.#endpointsSource = source
  }

  /** Cluster mode: whether the shared ledger answers, and how many shards this node owns. */
  observeCluster(sources: { ledgerUp: () => boolean; shards: () => number }): void {
    this.#ledgerUpSource = () => (sources.ledgerUp() ? 1 : 0)
    this.#shardsSource = sources.shards
  }

  /** Cluster mode: whether this node's NATS connection is up. */
  observeNats(connected: () => boolean): void {
    this.#natsSource = () => (connected() ? 1 : 0)
  }

  /** Where the queued-requests gauge reads its value at scrape time. */
  observeQueued(source: () => number): void {
    this.#queuedSource = source
  }

  observeLimitStates(source: () => number): void {
    this.#limitStatesSource = source
  }
}
