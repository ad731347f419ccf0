import Type from 'typebox'

/**
 * The one declaration of Fairlane's configuration: the TypeScript type, the validation and
 * the editor schema (docs/config.schema.json) all come from here. Defaults live in the
 * schema so that documentation and behaviour cannot drift apart.
 */

const Rate = Type.Object(
  {
    rps: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, description: 'Requests per second (GCRA).' }),
    ),
    rpm: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, description: 'Requests per minute (GCRA).' }),
    ),
    burst: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Requests that may pass at once from idle. Default: one second of the rate, rounded up, at least 1.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'A GCRA rate limit: exactly one of rps or rpm, with an optional burst.',
  },
)

const Window = Type.Object(
  {
    limit: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      description: 'Units allowed in any sliding window.',
    }),
    seconds: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      default: 60,
      description: 'Length of the sliding window in seconds.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'A sliding-window limit: at most `limit` units in any `seconds`, with no burst at window boundaries. Memory: 8 bytes × limit per active scope.',
  },
)

const Limits = Type.Object(
  {
    rate: Type.Optional(Rate),
    window: Type.Optional(Window),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Requests in flight at once.' }),
    ),
    unit: Type.Union([Type.Literal('request'), Type.Literal('cost'), Type.Literal('cents')], {
      default: 'request',
      description:
        'What rate and window count: requests, cost units (Fairlane-Cost or the response cost, e.g. LLM tokens), or cents (the price of requests to targets with prices; others count 0). A window counts whole units: prefer rate for cents.',
    }),
    onLedgerDown: Type.Union(
      [Type.Literal('local'), Type.Literal('open'), Type.Literal('closed')],
      {
        default: 'local',
        description:
          'Cluster mode, when Redis is unreachable and this scope is shared between nodes: local (each node enforces limit ÷ live nodes in memory), open (not enforced), closed (503 cluster_unavailable). Normal service resumes by itself when Redis answers.',
      },
    ),
  },
  { additionalProperties: false, description: 'Limits of one scope, checked together.' },
)

const Endpoint = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      description:
        'Absolute http(s) URL of the upstream, optionally with a base path; no userinfo, query or fragment.',
    }),
    region: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Region label of this endpoint; endpoints in the node’s own region (FAIRLANE_REGION) are tried first.',
      }),
    ),
    weight: Type.Number({
      minimum: 0,
      maximum: 1000,
      default: 1,
      description:
        'Share of requests among healthy endpoints of the same preference; 0 makes the endpoint a standby, tried after the weighted ones of its group.',
    }),
  },
  { additionalProperties: false },
)

const Retry = Type.Object(
  {
    attempts: Type.Integer({
      minimum: 1,
      maximum: 10,
      default: 3,
      description: 'Upstream attempts per request in all, the first included; 1 turns retries off.',
    }),
    maxRetryMs: Type.Integer({
      minimum: 0,
      default: 30_000,
      description:
        'Longest a request may spend waiting for retries in all (a Retry-After beyond it is passed to the client instead).',
    }),
    methods: Type.Array(Type.String({ pattern: '^[A-Z]+$' }), {
      default: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
      description:
        'Methods retried and raced; others only with an Idempotency-Key header, or with allowNonIdempotent.',
    }),
    allowNonIdempotent: Type.Boolean({
      default: false,
      description: 'Retry and race every method (the upstream deduplicates on its own).',
    }),
    budgetRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.2,
      description:
        'Retries and hedges allowed as a fraction of this target’s requests over the last 10 s (plus budgetPerSecond): stops retry storms when everything fails.',
    }),
    budgetPerSecond: Type.Number({
      minimum: 0,
      default: 5,
      description: 'Retries and hedges always allowed per second per node, whatever the ratio.',
    }),
    replayBodyBytes: Type.Integer({
      minimum: 0,
      default: 65_536,
      description:
        'Request bodies up to this size are kept for retries; a larger body is streamed once and its request is not retried.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Retries: on 429/503 the request waits in its lane until the time the upstream names, then goes again; on connect errors, 5xx and timeouts it fails over to the next healthy endpoint.',
  },
)

const Hedge = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description: 'Race a second endpoint when the first has not answered after delayMs.',
    }),
    delayMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'Fixed delay before the second request; when omitted, the first endpoint’s observed p95 latency (no hedge until it is known).',
      }),
    ),
    allowHeader: Type.Boolean({
      default: false,
      description: 'Let a client ask for a race on one request with `X-Fairlane-Hedge: on`.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Racing between endpoints.' },
)

const Health = Type.Object(
  {
    failureRatio: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.5,
      description: 'The circuit opens when this share of recent attempts failed…',
    }),
    minRequests: Type.Integer({
      minimum: 1,
      default: 5,
      description: '…among at least this many recent attempts.',
    }),
    consecutiveFailures: Type.Integer({
      minimum: 1,
      default: 5,
      description: 'The circuit also opens after this many failures in a row.',
    }),
    openMs: Type.Integer({
      minimum: 1,
      default: 5_000,
      description:
        'How long an open circuit refuses attempts before one trial (half-open); doubled after a failed trial.',
    }),
    maxOpenMs: Type.Integer({ minimum: 1, default: 60_000, description: 'Cap of the doubling.' }),
    successesToClose: Type.Integer({
      minimum: 1,
      default: 2,
      description: 'Successful trials in a row that close a half-open circuit.',
    }),
    probe: Type.Optional(
      Type.Object(
        {
          path: Type.String({
            pattern: '^/',
            description: 'Path probed on every endpoint of the target.',
          }),
          intervalMs: Type.Integer({ minimum: 100, default: 5_000 }),
          timeoutMs: Type.Integer({ minimum: 1, default: 2_000 }),
          expectStatus: Type.Object(
            {
              min: Type.Integer({ minimum: 100, maximum: 599, default: 200 }),
              max: Type.Integer({ minimum: 100, maximum: 599, default: 399 }),
            },
            {
              additionalProperties: false,
              default: {},
              description: 'Statuses that count as healthy: min to max, inclusive.',
            },
          ),
        },
        { additionalProperties: false, description: 'Active health probes.' },
      ),
    ),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Endpoint health: passive signals (errors, 5xx, timeouts) and optional probes.',
  },
)

const Adaptive = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Lanes adopt the limits the upstream states (RateLimit, X-RateLimit-*, Retry-After, X-Fairlane-RPS, X-Fairlane-Max-Concurrent), never above the configured ones.',
    }),
    decrease: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.5,
      description: 'On a 429 that states no limit, the lane’s rate is multiplied by this.',
    }),
    increasePerSecond: Type.Number({
      exclusiveMinimum: 0,
      default: 1,
      description:
        'Then it recovers by this many requests per second, every second without a 429, until it is no longer needed.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Adaptive lane limits.' },
)

const Timeouts = Type.Object(
  {
    connectMs: Type.Integer({
      minimum: 1,
      default: 5_000,
      description: 'TCP/TLS connect timeout.',
    }),
    headersMs: Type.Integer({
      minimum: 1,
      default: 30_000,
      description: 'Time from sending the request until the upstream response headers arrive.',
    }),
    bodyMs: Type.Integer({
      minimum: 1,
      default: 30_000,
      description: 'Longest silence between two chunks of the upstream response body.',
    }),
  },
  { additionalProperties: false, default: {} },
)

const Target = Type.Object(
  {
    endpoints: Type.Array(Endpoint, {
      minItems: 1,
      description:
        'Upstream endpoints: the node’s region first, then by health and weight; failover and hedging use the others.',
    }),
    retry: Retry,
    hedge: Hedge,
    health: Health,
    adaptive: Adaptive,
    allowPrivateAddresses: Type.Boolean({
      default: false,
      description:
        'Operator override for inbound mode: let this target reach loopback, private (RFC 1918, fc00::/7), link-local and CGNAT addresses. Cloud metadata addresses and Fairlane’s own listeners stay blocked.',
    }),
    timeouts: Timeouts,
    upstreamHeaders: Type.Record(
      Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }),
      Type.String(),
      {
        default: {},
        additionalProperties: false,
        description:
          'Headers injected into every upstream request of this target, typically the upstream credential (use ${ENV} references). They replace any client header of the same name.',
      },
    ),
    forwardClientAuthorization: Type.Boolean({
      default: false,
      description:
        'Forward the client’s own Authorization header upstream (the client then authenticates to Fairlane with X-Fairlane-Key).',
    }),
    perKeyConcurrency: Type.Integer({
      minimum: 1,
      default: 64,
      description:
        'Requests one key may have in flight at once on this target; more wait in the key’s lane. Upstream connections are pooled per address (128), shared by every target and workspace: this keeps one key from holding more than half of them.',
    }),
    limits: Type.Optional(Limits),
    headroom: Type.Integer({
      minimum: 0,
      default: 0,
      description:
        'Slots of limits.concurrency kept for callers with nothing in flight, so a new caller finds one at once under a flood; a lone flood can then use at most concurrency − headroom.',
    }),
    partitions: Type.Integer({
      minimum: 1,
      maximum: 4096,
      default: 1,
      description:
        'Queue partitions of this target; a lane belongs to partition hash(lane) mod partitions.',
    }),
    discipline: Type.Union([Type.Literal('fair'), Type.Literal('fifo')], {
      default: 'fair',
      description:
        'fair: lanes, tiers and deficit round robin. fifo: one arrival-order queue for all callers (for comparison).',
    }),
    prices: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9*][A-Za-z0-9*_.:/@-]{0,127}$' }),
      Type.Object(
        {
          input: Type.Number({
            minimum: 0,
            description: 'Cents per million input (prompt) tokens.',
          }),
          output: Type.Number({
            minimum: 0,
            description: 'Cents per million output (completion) tokens.',
          }),
        },
        { additionalProperties: false },
      ),
      {
        default: {},
        additionalProperties: false,
        description:
          'Price per model served by this target (name or `*` pattern, as in workspace models): turns the usage an answer reports into cents, for limits with unit cents (docs/llm.md).',
      },
    ),
    cost: Type.Object(
      {
        fromHeader: Type.Boolean({
          default: false,
          description: 'Accept a declared cost in the Fairlane-Cost request header.',
        }),
        maxDeclared: Type.Integer({
          minimum: 1,
          default: 1_000_000,
          description: 'Largest Fairlane-Cost accepted (400 beyond).',
        }),
        fromResponse: Type.Optional(
          Type.Object(
            {
              header: Type.Optional(
                Type.String({
                  minLength: 1,
                  description: 'Response header holding the real cost.',
                }),
              ),
              json: Type.Optional(
                Type.String({
                  pattern: '^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$',
                  description:
                    'Dot path of the real cost in a JSON response body, e.g. usage.total_tokens.',
                }),
              ),
            },
            {
              additionalProperties: false,
              description: 'Where the real cost of a request is read afterwards.',
            },
          ),
        ),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Cost units of a request: 1 unless set here.',
      },
    ),
  },
  { additionalProperties: false },
)

const Tier = Type.Object(
  {
    priority: Type.Integer({ minimum: 0, description: 'Lower is served first (strict priority).' }),
    minShare: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0,
      description:
        'Fraction of service owed to this tier while it has a backlog, even under higher tiers.',
    }),
    maxWaitMs: Type.Integer({
      minimum: 0,
      maximum: 3_600_000,
      default: 30_000,
      description:
        'Longest a request of this tier waits in its lane (503 queue_timeout beyond); 0 refuses at once instead of queueing.',
    }),
  },
  { additionalProperties: false },
)

const Queue = Type.Object(
  {
    perLane: Type.Integer({
      minimum: 1,
      default: 100,
      description: 'Requests waiting in one lane (one key on one target partition).',
    }),
    perWorkspace: Type.Integer({
      minimum: 1,
      default: 1_000,
      description: 'Requests waiting per workspace, per target partition.',
    }),
    perPartition: Type.Integer({
      minimum: 1,
      default: 10_000,
      description: 'Requests waiting in one target partition.',
    }),
    perNode: Type.Integer({
      minimum: 1,
      default: 100_000,
      description: 'Requests waiting in this node, all targets together.',
    }),
    quantum: Type.Number({
      exclusiveMinimum: 0,
      default: 1,
      description:
        'Cost units a lane earns per round, times its weight; raise it to the typical cost when costs are large.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Bounds of the fair queue; beyond any, 429 queue_full at once.',
  },
)

const Weight = Type.Number({
  minimum: 0.1,
  maximum: 1000,
  default: 1,
  description: 'Relative share of service against its siblings under contention.',
})

const Key = Type.Object(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
      description:
        'Public identifier of the key, unique within its workspace; logged instead of the key.',
    }),
    hash: Type.String({
      pattern: '^sha256:[0-9a-f]{64}$',
      description: 'sha256:<hex> of the secret key (`fairlane keys hash` prints one).',
    }),
    tier: Type.Optional(
      Type.String({ description: "The key's tier; the workspace's tier when omitted." }),
    ),
    weight: Weight,
    limits: Type.Optional(Limits),
  },
  { additionalProperties: false },
)

const Workspace = Type.Object(
  {
    targets: Type.Array(Type.String(), {
      default: [],
      description: 'Targets this workspace may reach through /t/<target>/…',
    }),
    hosts: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Approved host patterns for X-Fairlane-Url: exact hosts, `*.example.com` wildcards, or `*` (any public host).',
    }),
    tier: Type.String({
      default: 'free',
      description: 'Tier of the workspace’s keys that name none.',
    }),
    weight: Weight,
    limits: Type.Optional(Limits),
    keys: Type.Array(Key, { default: [] }),
    models: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9*][A-Za-z0-9*_.:/@-]{0,127}$' }),
      Type.String(),
      {
        default: {},
        additionalProperties: false,
        description:
          'OpenAI-style front door (docs/llm.md): model name or pattern (`*` matches any run of characters, e.g. `gpt-4o*`) to the target that serves it. With any entry, POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses and the other OpenAI endpoints pick their target from the `model` field of the body; an exact name wins over patterns, and the longest pattern over shorter ones. Each target must be in this workspace’s targets.',
      },
    ),
    webhookSecrets: Type.Array(
      Type.String({
        pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$',
        description: 'whsec_ followed by base64 (use an ${ENV} reference).',
      }),
      {
        default: [],
        description:
          'Secrets that sign this workspace’s job webhooks (Standard Webhooks): the first signs; keep the previous one listed while receivers rotate. Jobs with webhooks need at least one.',
      },
    ),
  },
  { additionalProperties: false },
)

const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

const Jwt = Type.Object(
  {
    header: Type.String({
      pattern: HEADER_NAME,
      default: 'authorization',
      description:
        'Request header carrying the token; in Authorization it must use the Bearer scheme, in any other header it is the whole value.',
    }),
    algorithm: Type.Union([Type.Literal('HS256'), Type.Literal('RS256'), Type.Literal('ES256')], {
      description: 'The one algorithm tokens must be signed with; any other is refused.',
    }),
    secret: Type.Optional(
      Type.String({
        minLength: 32,
        description: 'HS256: the shared secret, at least 32 characters (use an ${ENV} reference).',
      }),
    ),
    publicKey: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'RS256/ES256: the public key as PEM (SPKI, "-----BEGIN PUBLIC KEY-----").',
      }),
    ),
    jwksFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'RS256/ES256: path of a JWKS file ({"keys": [...]}); the token’s kid picks the key. Read on first use after start and after each reload.',
      }),
    ),
    claim: Type.String({
      minLength: 1,
      default: 'sub',
      description:
        'Claim naming the caller: its value is the lane, and what customers[].claim matches.',
    }),
    tierClaim: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Claim that may set the caller’s tier (a configured tier name); any other value is ignored.',
      }),
    ),
    issuer: Type.Optional(Type.String({ minLength: 1, description: 'Required iss claim.' })),
    audience: Type.Optional(Type.String({ minLength: 1, description: 'Required aud claim.' })),
    clockToleranceSeconds: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 5,
      description: 'Allowed clock skew when checking exp and nbf.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Callers by a claim of a JWT Fairlane verifies; an invalid or expired token is 401 caller_unauthenticated, never a lane.',
  },
)

const IpCallers = Type.Object(
  {
    ipv4Prefix: Type.Integer({
      minimum: 8,
      maximum: 32,
      default: 32,
      description: 'IPv4 callers are aggregated to this prefix (24: one lane per /24).',
    }),
    ipv6Prefix: Type.Integer({
      minimum: 16,
      maximum: 128,
      default: 64,
      description: 'IPv6 callers are aggregated to this prefix (64 or 56 are usual).',
    }),
    tier: Type.Optional(
      Type.String({
        description: "Tier of callers known by IP only; the route's tier when omitted.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Callers by client IP (the socket peer, or the forwarded address when the peer is a trusted proxy), aggregated to a prefix.',
  },
)

const NewCallers = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Bound the rate at which callers this node has not let in lately get lanes of their own.',
    }),
    perSecond: Type.Number({
      exclusiveMinimum: 0,
      default: 200,
      description:
        'New callers a node lets into this route per second, on average (a token bucket refilled continuously).',
    }),
    burst: Type.Integer({
      minimum: 1,
      default: 2000,
      description: 'New callers a node lets in at once after a quiet spell (the bucket size).',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'A bound on new callers per node: a caller the node let into this route lately (the most recent callers.maxIdle of them) and every customers entry pass; any other caller takes a token, and without one is refused at once with 429 rate_limited and Retry-After, before any lane, limit state or upstream call (its request line is still logged). Against a flood of distinct credentials or addresses (credential stuffing, a botnet) it keeps the node’s work, and the latency of its established callers, bounded.',
  },
)

const Route = Type.Object(
  {
    host: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Host the route answers for (the Host header without its port, case-insensitive); any host when omitted.',
      }),
    ),
    pathPrefix: Type.String({
      pattern: '^/',
      default: '/',
      description:
        'Path prefix the route answers for, matched on whole segments (/v1 matches /v1 and /v1/orders, not /v10); the longest matching prefix wins. The path is sent upstream unchanged.',
    }),
    target: Type.String({ description: 'The target requests of this route go to.' }),
    models: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9*][A-Za-z0-9*_.:/@-]{0,127}$' }),
      Type.String(),
      {
        default: {},
        additionalProperties: false,
        description:
          'OpenAI-style front door for this route’s callers (docs/llm.md): model name or `*` pattern to target. With any entry, the route’s POST /v1/chat/completions and the other OpenAI endpoints go to the target of the body’s `model` (403 model_not_allowed for none) and GET /v1/models lists these; other paths go to `target`.',
      },
    ),
    callers: Type.Object(
      {
        header: Type.Optional(
          Type.String({
            pattern: HEADER_NAME,
            description:
              'Header whose value names the caller (e.g. authorization or x-api-key); the value is hashed (SHA-256), never logged, and reaches the upstream untouched.',
          }),
        ),
        jwt: Type.Optional(Jwt),
        ip: Type.Optional(IpCallers),
        maxIdle: Type.Integer({
          minimum: 100,
          default: 50_000,
          description:
            'Most callers of this route whose limit state a node keeps (those with a request in flight count too and are never forgotten). Beyond it the route forgets its own callers whose state no longer limits anything, then its oldest idle ones (they start afresh), so a flood of distinct callers into one route keeps memory bounded without touching other routes. limits.maxStates still bounds the whole node. It also bounds the callers a node knows for newCallers.',
        }),
        newCallers: NewCallers,
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Where the caller of a lane comes from, first present first: header, then jwt, then ip. With none set, callers are client IPs (/32, /64); with header or jwt set and no ip, a request carrying neither is 401.',
      },
    ),
    tier: Type.String({
      default: 'free',
      description: 'Tier of callers that no customer entry or verified claim places.',
    }),
    weight: Type.Number({
      minimum: 0.1,
      maximum: 1000,
      default: 1,
      description: 'DRR weight of callers that no customer entry gives one.',
    }),
    limits: Type.Optional(Limits),
    forwardCaller: Type.Boolean({
      default: false,
      description:
        'Send X-Fairlane-Caller upstream: the caller as Fairlane knows it (customer name, sha256 of the credential or claim, or the IP prefix).',
    }),
    forwardTier: Type.Boolean({
      default: false,
      description: 'Send X-Fairlane-Tier upstream: the tier the request was admitted in.',
    }),
  },
  { additionalProperties: false },
)

const Customer = Type.Object(
  {
    credential: Type.Optional(
      Type.String({
        pattern: '^sha256:[0-9a-f]{64}$',
        description:
          'sha256:<hex> of the caller header’s whole value (`fairlane keys hash` prints one).',
      }),
    ),
    claim: Type.Optional(
      Type.String({ minLength: 1, description: "Value of a route's jwt.claim for this customer." }),
    ),
    tier: Type.Optional(
      Type.String({ description: "The customer's tier; the route's when omitted." }),
    ),
    weight: Type.Optional(
      Type.Number({
        minimum: 0.1,
        maximum: 1000,
        description: "The customer's DRR weight; the route's when omitted.",
      }),
    ),
    limits: Type.Optional(Limits),
  },
  { additionalProperties: false },
)

const Server = Type.Object(
  {
    host: Type.String({ default: '0.0.0.0', description: 'Proxy listen address.' }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8080,
      description: 'Proxy port (FAIRLANE_PORT overrides).',
    }),
    adminHost: Type.String({
      default: '127.0.0.1',
      description:
        'Admin listen address. Loopback by default: /metrics, /healthz, /readyz and /upstreams answer without a token, so expose the port (0.0.0.0 or a private interface address) only to a network that only your scrapers and probes reach.',
    }),
    adminPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 9090,
      description: 'Admin and metrics port (FAIRLANE_ADMIN_PORT overrides).',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 0,
      default: 10 * 1024 * 1024,
      description: 'Largest request body accepted (413 beyond).',
    }),
    maxHeaderBytes: Type.Integer({
      minimum: 1024,
      default: 16 * 1024,
      description: 'Largest request head accepted (431 beyond).',
    }),
    headTimeoutMs: Type.Integer({
      minimum: 1,
      default: 60_000,
      description:
        'Longest time a request head (request line and headers) may take to arrive; 408 request_timeout beyond, and the connection is closed. Read at start.',
    }),
    bodyIdleMs: Type.Integer({
      minimum: 1,
      default: 10_000,
      description:
        'Longest silence between two chunks of a request body while Fairlane reads it (408 request_timeout beyond).',
    }),
    bodyTimeoutMs: Type.Integer({
      minimum: 1,
      default: 120_000,
      description:
        'Longest time a request body may take to arrive whole, from when Fairlane starts reading it (after its wait in the lane); 408 request_timeout beyond.',
    }),
    shutdownGraceMs: Type.Integer({
      minimum: 0,
      default: 10_000,
      description:
        'On SIGTERM, how long requests in flight may take to finish before connections are closed.',
    }),
  },
  { additionalProperties: false, default: {} },
)

const Destinations = Type.Object(
  {
    allowHttp: Type.Boolean({
      default: false,
      description: 'Allow plain http:// URLs in X-Fairlane-Url (https only by default).',
    }),
    allowedPorts: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), {
      default: [443],
      description: 'Ports X-Fairlane-Url may name (80 is added when allowHttp is set).',
    }),
    forwardClientAuthorization: Type.Boolean({
      default: false,
      description:
        'Forward the client’s own Authorization header to X-Fairlane-Url destinations (the client then authenticates with X-Fairlane-Key).',
    }),
    perKeyConcurrency: Type.Integer({
      minimum: 1,
      default: 64,
      description:
        'Requests one key may have in flight at once on X-Fairlane-Url destinations; more wait in the key’s lane. Upstream connections are pooled per address (128), shared by every target and workspace: this keeps one key from holding more than half of them.',
    }),
    timeouts: Timeouts,
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Rules for the X-Fairlane-Url proxy form.',
  },
)

const Logging = Type.Object(
  {
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'pino log level.' },
    ),
  },
  { additionalProperties: false, default: {} },
)

const Cluster = Type.Object(
  {
    shards: Type.Integer({
      minimum: 1,
      maximum: 65_536,
      default: 256,
      description:
        'Shards of the queue: a target partition belongs to shard hash(target#partition) mod shards. The same on every node of a cluster; changing it needs a full restart.',
    }),
    leaseTtlMs: Type.Integer({
      minimum: 300,
      default: 6_000,
      description:
        'Shard lease TTL: a node that dies loses its shards to the others after this long (plus a third of it).',
    }),
    checkpointMs: Type.Integer({
      minimum: 10,
      default: 100,
      description:
        'How often a queue actor saves the limit state of its partitions to Redis, for the next owner after a crash; over-admission after a crash is bounded by what passed in this time.',
    }),
    startTimeoutMs: Type.Integer({
      minimum: 0,
      default: 120_000,
      description:
        'At start, how long a node waits for NATS and Redis to answer (retrying with backoff, the admin port up and /readyz 503 meanwhile) before it exits with an error naming the address it could not reach.',
    }),
    shares: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description:
            'Leased shares: the owner of a lane that is not backlogged grants the ingress nodes sending to it admissions they hand out locally, with no NATS round trip per request.',
        }),
        ttlMs: Type.Integer({
          minimum: 50,
          maximum: 10_000,
          default: 1_000,
          description:
            'How long an ingress node may hand out a granted admission; unused ones go back to the owner then, and the owner frees what it hears nothing of after twice this plus a second.',
        }),
        max: Type.Integer({
          minimum: 1,
          maximum: 1_000,
          default: 256,
          description:
            'Most admissions a lane asks for at once, whatever the demand (a grant covers about 250 ms of the lane’s requests on that node: 256 is a lane at 1,000 requests a second).',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Leased shares of a lane’s budget for ingress nodes (docs/cluster.md).',
      },
    ),
    natsDownGraceMs: Type.Integer({
      minimum: 0,
      default: 5_000,
      description:
        'How long the NATS connection may be down before /readyz answers 503 (the client reconnects by itself; a blip does not take the node out of rotation).',
    }),
    redisDownGraceMs: Type.Integer({
      minimum: 0,
      default: 5_000,
      description:
        'On a node with the actor role, how long the ledger\'s Redis may fail the once-a-second probe before /readyz answers 503 naming "redis" (shared scopes follow onLedgerDown meanwhile; ingress-only nodes stay ready). Every owner sees the same Redis, so an outage longer than this takes every node with the actor role out of rotation: raise it when your shared scopes are local or open and serving on beats being taken out.',
    }),
    batchMaxItems: Type.Integer({
      minimum: 1,
      maximum: 1_000,
      default: 64,
      description:
        'Most items (tickets, done, cancel; or answers) in one NATS message between an ingress node and a shard owner: a batch goes as soon as it has this many. 1 sends each alone.',
    }),
    batchFlushDelayMs: Type.Integer({
      minimum: 0,
      maximum: 100,
      default: 0,
      description:
        'Longest an item waits for others before its batch goes: 0 sends at the end of the current turn of the event loop (no added wait); more waits that many ms for fuller batches.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Cluster mode (FAIRLANE_NATS_URL and FAIRLANE_REDIS_URL set): shards and their leases.',
  },
)

const Jobs = Type.Object(
  {
    dataDir: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Embedded mode: directory of the job store (jobs.sqlite). FAIRLANE_DATA_DIR overrides it; ./fairlane-data when both are unset. The store is opened by the first job, or at start when it exists.',
      }),
    ),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 64,
      description:
        'Job attempts a node runs at once (each waits in its lane or calls the upstream); the other due jobs stay in the store.',
    }),
    perKeyConcurrency: Type.Integer({
      minimum: 1,
      default: 16,
      description:
        'Of those, at most this many of one key, so one key’s backlog cannot take every worker slot.',
    }),
    defaultDeadlineMs: Type.Integer({
      minimum: 1000,
      default: 86_400_000,
      description:
        'Deadline of a job that names none: no attempt starts later than this after submission.',
    }),
    maxDeadlineMs: Type.Integer({
      minimum: 1000,
      default: 604_800_000,
      description: 'Longest deadlineMs a job may ask for.',
    }),
    resultMaxBytes: Type.Integer({
      minimum: 0,
      maximum: 16_777_216,
      default: 1_048_576,
      description: 'Upstream response body kept per job; a longer one is cut (response.truncated).',
    }),
    retentionMs: Type.Integer({
      minimum: 60_000,
      default: 604_800_000,
      description:
        'How long a finished job stays readable (GET /v1/jobs/{id}), then it is deleted.',
    }),
    pollMs: Type.Integer({
      minimum: 10,
      maximum: 60_000,
      default: 250,
      description: 'How often the worker looks for due jobs and deliveries when nothing woke it.',
    }),
    webhooks: Type.Object(
      {
        timeoutMs: Type.Integer({
          minimum: 100,
          default: 10_000,
          description: 'A receiver must answer within this.',
        }),
        initialDelayMs: Type.Integer({
          minimum: 10,
          default: 5_000,
          description: 'Wait after the first failed delivery; ×4 after each further failure.',
        }),
        maxDelayMs: Type.Integer({
          minimum: 10,
          default: 3_600_000,
          description: 'Longest wait between two tries of a delivery.',
        }),
        maxAgeMs: Type.Integer({
          minimum: 1000,
          default: 86_400_000,
          description:
            'A delivery still failing this long after its first try is dead-lettered (redeliver with POST /v1/jobs/{id}/redeliver).',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    cluster: Type.Object(
      {
        replicas: Type.Union([Type.Literal(1), Type.Literal(3)], {
          default: 1,
          description:
            'JetStream replicas of the job buckets and stream: 1, or 3 when NATS runs as a cluster of three servers or more (a job then survives the loss of one NATS server). Set when the first node creates them; see docs/jobs.md to change it later.',
        }),
        ackWaitMs: Type.Integer({
          minimum: 1_000,
          maximum: 600_000,
          default: 30_000,
          description:
            'A worker extends the messages of its jobs every third of this; a job whose worker died goes to another worker this long after its last extension.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Cluster mode: jobs in NATS JetStream (docs/jobs.md).',
      },
    ),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Async jobs (POST /v1/jobs): the store, the worker and webhook delivery.',
  },
)

export const ConfigSchema = Type.Object(
  {
    server: Server,
    cluster: Cluster,
    logging: Logging,
    destinations: Destinations,
    queue: Queue,
    jobs: Jobs,
    tiers: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' }), Tier, {
      default: {
        reserved: { priority: 0, minShare: 0, maxWaitMs: 30_000 },
        paid: { priority: 1, minShare: 0.1, maxWaitMs: 30_000 },
        free: { priority: 2, minShare: 0.05, maxWaitMs: 10_000 },
      },
      additionalProperties: false,
      description: 'Service tiers; defining this key replaces the default reserved/paid/free set.',
    }),
    limits: Type.Object(
      {
        global: Type.Optional(Limits),
        maxStates: Type.Integer({
          minimum: 1_000,
          default: 100_000,
          description:
            'Most limit states (one per scope in use: a route caller, a key, a workspace, a target) a node keeps in memory. Beyond it the oldest with nothing in flight are forgotten (their callers start afresh), so a flood of distinct callers keeps memory bounded.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Limits shared by all traffic.' },
    ),
    // additionalProperties: false makes a badly spelled name an error instead of an entry
    // that no pattern validates.
    targets: Type.Record(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' }), Target, {
      default: {},
      additionalProperties: false,
      description:
        'Named upstream APIs, reached as /t/<target>/<path>. Names: lower-case letters, digits, - and _.',
    }),
    routes: Type.Record(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' }), Route, {
      default: {},
      additionalProperties: false,
      description:
        'Inbound mode: requests matched by host and path prefix go to a target with no Fairlane key, one lane per caller (docs/inbound.md).',
    }),
    customers: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
      Customer,
      {
        default: {},
        additionalProperties: false,
        description:
          'Known callers of routes, by credential hash or verified claim value: their tier, weight and limits.',
      },
    ),
    trustedProxies: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'CIDRs (or single addresses) of proxies in front of Fairlane whose forwarded client address routes believe.',
    }),
    forwardedHeader: Type.Union([Type.Literal('x-forwarded-for'), Type.Literal('forwarded')], {
      default: 'x-forwarded-for',
      description:
        'The one header trusted proxies state the client address in; the other is never read.',
    }),
    workspaces: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$' }),
      Workspace,
      {
        default: {},
        additionalProperties: false,
        description:
          'Tenants of this Fairlane: each with its keys, allowed targets and host patterns.',
      },
    ),
  },
  { additionalProperties: false, title: 'Fairlane configuration' },
)

export type FairlaneConfig = Type.Static<typeof ConfigSchema>
export type TargetConfig = Type.Static<typeof Target>
export type WorkspaceConfig = Type.Static<typeof Workspace>
export type KeyConfig = Type.Static<typeof Key>
export type LimitsConfig = Type.Static<typeof Limits>
export type RateConfig = Type.Static<typeof Rate>
export type RouteConfig = Type.Static<typeof Route>
export type JwtConfig = Type.Static<typeof Jwt>
export type CustomerConfig = Type.Static<typeof Customer>
export type JobsConfig = Type.Static<typeof Jobs>
