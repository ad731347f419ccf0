import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type OpenMetricsContentType,
} from 'prom-client'
import { CounterChild } from './counter-child.ts'
import { ExemplarChild, type TracedObserver } from './exemplar-child.ts'
import { exposition, type Exposition } from './exposition.ts'
import { LabelledChildren } from './labelled-children.ts'

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

const CIRCUIT_STATES = ['closed', 'open', 'half-open'] as const

/** What fairlane_build_info says about the running process. */
export interface BuildInfo {
  readonly version: string
  readonly node: string
  readonly region: string
  readonly mode: 'embedded' | 'cluster'
}

/** How a lane's request left the queue: admitted, or the refusal code it got. */
export type LaneOutcome =
  'admitted' | 'rate_limited' | 'queue_full' | 'queue_timeout' | 'cluster_unavailable'

/** Upstream requests beyond a request's first: a retry, a failover or a hedge. */
export type ExtraAttempt = 'retry' | 'failover' | 'hedge'

/** Calls to the shared ledger (Redis) that the actor waits on or makes in the background. */
export type LedgerCall = 'reserve' | 'refund' | 'renew' | 'debit'

/** The children one call site observes, looked up once per label set and then reused. */
interface Observer {
  observe(value: number): void
}
interface Incrementer {
  inc(value?: number): void
}

export class FairlaneMetrics {
  readonly registry: Registry<OpenMetricsContentType>
  readonly requests: Counter<'target' | 'status' | 'stage'>
  // Histograms with exemplars: prom-client's observe(labels, value) throws on them, so they
  // are observed only through their children (requestDurationOf, upstreamDurationOf,
  // queueWaitOf).
  readonly #requestDuration: Histogram<'target'>
  readonly #upstreamDuration: Histogram<'target' | 'region'>
  readonly #queueWait: Histogram<'target' | 'tier'>
  readonly limitRefusals: Counter<'scope' | 'reason'>
  readonly laneRequests: Counter<'workspace' | 'tier' | 'outcome'>
  readonly upstreamExtraAttempts: Counter<'target' | 'kind'>
  readonly ledgerCallDuration: Histogram<'call'>
  readonly natsRtt: Gauge
  readonly buildInfo: Gauge<'version' | 'node' | 'region' | 'mode' | 'nodejs'>
  readonly endpointCircuitState: Gauge<'target' | 'endpoint' | 'region' | 'state'>
  readonly queueRefusals: Counter<'target' | 'reason' | 'bound'>
  readonly queued: Gauge
  readonly limitStates: Gauge
  readonly logLinesDropped: Counter
  readonly ledgerDownDecisions: Counter<'scope' | 'policy'>
  readonly ledgerUp: Gauge
  readonly shardsOwned: Gauge
  readonly clusterShards: Gauge
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
  #logLinesDroppedSource: () => number = () => 0
  #ledgerUpSource: () => number = () => 1
  #shardsSource: () => number = () => 0
  #natsSource: () => number = () => 1
  #natsRttSource: () => number | undefined = () => undefined
  readonly #requestDurations = new Map<string, TracedObserver>()
  readonly #queueWaits = new LabelledChildren<TracedObserver>()
  readonly #laneOutcomes = new LabelledChildren<Map<LaneOutcome, Incrementer>>()
  readonly #requestCounts = new LabelledChildren<Map<number, Incrementer>>()
  readonly #upstreamDurations = new LabelledChildren<TracedObserver>()
  readonly #extraAttempts = new Map<string, Readonly<Record<ExtraAttempt, Incrementer>>>()
  readonly #ledgerCalls = new Map<LedgerCall, Observer>()

  constructor(options: { defaultMetrics?: boolean } = {}) {
    // OpenMetrics, the only format prom-client writes exemplars in; exposition() renders the
    // text format from it for scrapers that do not ask for OpenMetrics.
    this.registry = new Registry<OpenMetricsContentType>()
    this.registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
    if (options.defaultMetrics ?? true) {
      // Unprefixed, so stock Node.js dashboards and alerts find process_* and nodejs_*.
      collectDefaultMetrics({ register: this.registry })
    }
    this.requests = new Counter({
      name: 'fairlane_requests_total',
      help: 'Requests answered by the proxy, by target, HTTP status and the stage that answered.',
      labelNames: ['target', 'status', 'stage'],
      registers: [this.registry],
    })
    this.#requestDuration = new Histogram({
      name: 'fairlane_request_duration_seconds',
      help: 'Time from request arrival until the response is complete (body included), by target.',
      labelNames: ['target'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      enableExemplars: true,
      registers: [this.registry],
    })
    this.#upstreamDuration = new Histogram({
      name: 'fairlane_upstream_duration_seconds',
      help: 'Time from sending the upstream request to its response headers, by target and the endpoint region ("" when it has none).',
      labelNames: ['target', 'region'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      enableExemplars: true,
      registers: [this.registry],
    })
    this.limitRefusals = new Counter({
      name: 'fairlane_limit_refusals_total',
      help: 'Requests refused by a limit, by the scope that refused and why (rate or concurrency).',
      labelNames: ['scope', 'reason'],
      registers: [this.registry],
    })
    this.#queueWait = new Histogram({
      name: 'fairlane_queue_wait_seconds',
      help: 'Time admitted requests waited in their lane, by target and tier.',
      labelNames: ['target', 'tier'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      enableExemplars: true,
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
    const dropped = () => this.#logLinesDroppedSource()
    let droppedCounted = 0
    this.logLinesDropped = new Counter({
      name: 'fairlane_log_lines_dropped_total',
      help: 'Log lines dropped: standard output’s reader lagged past the bound of held lines, or a write to it failed for good.',
      registers: [this.registry],
      collect() {
        const now = dropped()
        if (now > droppedCounted) this.inc(now - droppedCounted)
        droppedCounted = now
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
    this.clusterShards = new Gauge({
      name: 'fairlane_cluster_shards',
      help: 'Cluster mode: cluster.shards, the number of queue shards of the cluster; summed over the nodes, fairlane_shards_owned should equal it.',
      registers: [this.registry],
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
    this.laneRequests = new Counter({
      name: 'fairlane_lane_requests_total',
      help: 'Requests that asked their lane for admission, by workspace (route:<name> for inbound routes), tier and outcome: admitted, or the refusal code.',
      labelNames: ['workspace', 'tier', 'outcome'],
      registers: [this.registry],
    })
    this.upstreamExtraAttempts = new Counter({
      name: 'fairlane_upstream_extra_attempts_total',
      help: 'Upstream requests sent beyond each request’s first, by target and kind: retry (a 429 or 503, same or next endpoint), failover (after a connect error, timeout or 5xx) or hedge (a race to a second endpoint).',
      labelNames: ['target', 'kind'],
      registers: [this.registry],
    })
    this.ledgerCallDuration = new Histogram({
      name: 'fairlane_ledger_call_duration_seconds',
      help: 'Cluster mode: time of each call to the shared ledger (Redis), by call: reserve, refund, renew, debit.',
      labelNames: ['call'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    })
    const rtt = () => this.#natsRttSource()
    this.natsRtt = new Gauge({
      name: 'fairlane_nats_rtt_seconds',
      help: 'Cluster mode: the last round trip to the NATS server measured by this node (every 5 s).',
      registers: [this.registry],
      collect() {
        const seconds = rtt()
        if (seconds !== undefined) this.set(seconds)
      },
    })
    this.buildInfo = new Gauge({
      name: 'fairlane_build_info',
      help: 'Always 1; its labels say which Fairlane version runs on this node, in which mode and region, on which Node.js.',
      labelNames: ['version', 'node', 'region', 'mode', 'nodejs'],
      registers: [this.registry],
    })
    this.endpointCircuitState = new Gauge({
      name: 'fairlane_endpoint_circuit_state',
      help: 'Circuit of an upstream endpoint as this node sees it: 1 for the state it is in (closed, open, half-open), 0 for the other two.',
      labelNames: ['target', 'endpoint', 'region', 'state'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const e of endpoints()) {
          const labels = { target: e.target, endpoint: e.endpoint, region: e.region ?? '' }
          for (const state of CIRCUIT_STATES)
            this.set({ ...labels, state }, e.state === state ? 1 : 0)
        }
      },
    })
  }

  /** Says once, at start, what runs on this node. */
  describeBuild(info: BuildInfo): void {
    this.buildInfo.set({ ...info, nodejs: process.version }, 1)
  }

  /** The metrics for one scrape, in the format its Accept header asks for (exposition.ts). */
  exposition(accept: string | undefined): Promise<Exposition> {
    return exposition(this.registry, accept)
  }

  /** The request duration child of a target, made once. */
  requestDurationOf(target: string): TracedObserver {
    let child = this.#requestDurations.get(target)
    if (!child) {
      child = new ExemplarChild(this.#requestDuration, { target })
      this.#requestDurations.set(target, child)
    }
    return child
  }

  /** The queue wait child of a target and tier, made once per pair. */
  queueWaitOf(target: string, tier: string): TracedObserver {
    return this.#queueWaits.get(
      target,
      tier,
      () => new ExemplarChild(this.#queueWait, { target, tier }),
    )
  }

  /** The lane outcome child of a workspace, tier and outcome, made once per triple. */
  laneOutcomeOf(workspace: string, tier: string, outcome: LaneOutcome): Incrementer {
    const outcomes = this.#laneOutcomes.get(workspace, tier, () => new Map())
    let child = outcomes.get(outcome)
    if (!child) {
      child = new CounterChild(this.laneRequests, { workspace, tier, outcome })
      outcomes.set(outcome, child)
    }
    return child
  }

  /** The `fairlane_requests_total` child of a target, answering stage and status, made once per set. */
  requestsOf(target: string, stage: string, status: number): Incrementer {
    const statuses = this.#requestCounts.get(target, stage, () => new Map())
    let child = statuses.get(status)
    if (!child) {
      child = new CounterChild(this.requests, { target, status: String(status), stage })
      statuses.set(status, child)
    }
    return child
  }

  /** The upstream duration child of a target and endpoint region, made once per pair. */
  upstreamDurationOf(target: string, region: string): TracedObserver {
    return this.#upstreamDurations.get(
      target,
      region,
      () => new ExemplarChild(this.#upstreamDuration, { target, region }),
    )
  }

  /**
   * The extra-attempt children of a target. Its three kinds are made together at 0, so a
   * rate over them exists (0) before the first retry, failover or hedge.
   */
  extraAttemptsOf(target: string): Readonly<Record<ExtraAttempt, Incrementer>> {
    let children = this.#extraAttempts.get(target)
    if (!children) {
      const child = (kind: ExtraAttempt) => {
        const made = new CounterChild(this.upstreamExtraAttempts, { target, kind })
        made.inc(0)
        return made
      }
      children = { retry: child('retry'), failover: child('failover'), hedge: child('hedge') }
      this.#extraAttempts.set(target, children)
    }
    return children
  }

  /** The ledger call child of a call, made once. */
  ledgerCallOf(call: LedgerCall): Observer {
    let child = this.#ledgerCalls.get(call)
    if (!child) {
      child = this.ledgerCallDuration.labels({ call })
      this.#ledgerCalls.set(call, child)
    }
    return child
  }

  /** Cluster mode: the last NATS round trip in seconds, undefined before the first. */
  observeNatsRtt(source: () => number | undefined): void {
    this.#natsRttSource = source
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

  /** Where the dropped-log-lines counter reads its running total at scrape time. */
  observeLogLinesDropped(source: () => number): void {
    this.#logLinesDroppedSource = source
  }
}
