import { describe, expect, it } from 'vitest'
import { validateConfig } from './validate.ts'

const HASH = 'sha256:' + 'a'.repeat(64)

function issuesOf(input: unknown): string[] {
  const result = validateConfig(input)
  return result.ok ? [] : result.issues.map((i) => `${i.path}: ${i.message}`)
}

describe('validateConfig', () => {
  it('fills every default for an empty file', () => {
    const result = validateConfig({})
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.config.server).toMatchObject({
      port: 8080,
      adminPort: 9090,
      maxBodyBytes: 10485760,
    })
    expect(result.config.destinations).toMatchObject({ allowHttp: false, allowedPorts: [443] })
    expect(result.config.destinations.timeouts).toEqual({
      connectMs: 5000,
      headersMs: 30000,
      bodyMs: 30000,
    })
    expect(result.config.logging.level).toBe('info')
  })

  it('fills nested defaults inside targets and workspaces', () => {
    const result = validateConfig({
      targets: { echo: { endpoints: [{ url: 'http://127.0.0.1:8089' }] } },
      workspaces: { demo: { keys: [{ id: 'k', hash: HASH }] } },
    })
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.config.targets['echo']).toMatchObject({
      allowPrivateAddresses: false,
      upstreamHeaders: {},
      timeouts: { connectMs: 5000 },
    })
    expect(result.config.workspaces['demo']).toMatchObject({ targets: [], hosts: [] })
  })

  it('lists every error by path, in one pass', () => {
    const issues = issuesOf({
      server: { port: 'eighty', colour: 'blue' },
      logging: { level: 'loud' },
      targets: {
        echo: {
          endpoints: [{ url: 'api.openai.com' }, { url: 'ftp://x' }, { url: 'https://u:p@x.com' }],
        },
        'Bad Name': { endpoints: [{ url: 'https://x.com' }] },
        nopoints: {},
      },
      workspaces: {
        demo: {
          targets: ['echo', 'missing'],
          hosts: ['*.example.com', 'http://x.com/', '*'],
          limits: { rate: { rps: 5, rpm: 10 } },
          keys: [
            { id: 'a', hash: HASH },
            { id: 'a', hash: 'sha256:' + 'b'.repeat(64) },
            { id: 'c', hash: 'md5:abc' },
          ],
        },
      },
    })
    expect(issues).toEqual(
      expect.arrayContaining([
        'server.port: must be integer',
        'server: unknown key "colour"',
        'logging.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
        'targets: name "Bad Name" is not allowed (must match ^[a-z0-9][a-z0-9_-]{0,62}$)',
        'targets.nopoints: missing required key "endpoints"',
        'workspaces.demo.keys[2].hash: must match ^sha256:[0-9a-f]{64}$',
      ]),
    )
  })

  it('reports rules a schema cannot express', () => {
    const issues = issuesOf({
      targets: {
        echo: {
          endpoints: [{ url: 'api.openai.com' }, { url: 'ftp://x' }, { url: 'https://u:p@x.com' }],
        },
      },
      workspaces: {
        demo: {
          targets: ['echo', 'missing'],
          hosts: ['*.example.com', 'http://x.com/', '*', 'bücher.example'],
          limits: { rate: { rps: 5, rpm: 10 } },
          keys: [
            { id: 'a', hash: HASH },
            { id: 'a', hash: 'sha256:' + 'b'.repeat(64) },
          ],
        },
        other: { keys: [{ id: 'z', hash: HASH }] },
      },
    })
    expect(issues).toEqual([
      'targets.echo.endpoints[0].url: must be an absolute http(s) URL (got "api.openai.com")',
      'targets.echo.endpoints[1].url: must be an absolute http(s) URL (got "ftp://x")',
      'targets.echo.endpoints[2].url: must not contain userinfo; put credentials in upstreamHeaders',
      'workspaces.demo.targets[1]: unknown target "missing"',
      'workspaces.demo.hosts[1]: must be a host name, *.domain or * (got "http://x.com/")',
      'workspaces.demo.limits.rate: set exactly one of rps or rpm',
      'workspaces.demo.keys[1].id: duplicate key id "a"',
      'workspaces.other.keys[0].hash: same secret as workspaces.demo.keys[0]',
    ])
  })

  it('does not modify its input', () => {
    const input = { server: {} }
    validateConfig(input)
    expect(input).toEqual({ server: {} })
  })
})

describe('validateConfig: tiers and queues', () => {
  it('has reserved, paid and free tiers by default, and every key gets one', () => {
    const result = validateConfig({})
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(Object.keys(result.config.tiers)).toEqual(['reserved', 'paid', 'free'])
    expect(result.config.queue).toEqual({
      perLane: 100,
      perWorkspace: 1000,
      perPartition: 10000,
      perNode: 100000,
      quantum: 1,
    })
  })

  it('lets tiers be redefined and checks every reference to them', () => {
    expect(
      issuesOf({
        tiers: { gold: { priority: 0, minShare: 0.6 }, bronze: { priority: 1, minShare: 0.5 } },
        workspaces: { w: { tier: 'free', keys: [{ id: 'k', hash: HASH, tier: 'silver' }] } },
      }),
    ).toEqual([
      'tiers: minimum shares add up to 1.1; they must leave room (< 1)',
      'workspaces.w.tier: unknown tier "free" (tiers: gold, bronze)',
      'workspaces.w.keys[0].tier: unknown tier "silver" (tiers: gold, bronze)',
    ])
  })
})

describe('validateConfig: values from references', () => {
  it('reads text as the number or boolean the schema wants there, and keeps strings elsewhere', () => {
    const result = validateConfig({
      server: { port: '8181' },
      destinations: { allowHttp: 'true' },
      targets: {
        t: { endpoints: [{ url: 'https://x.example' }], upstreamHeaders: { 'x-api-version': '2' } },
      },
    })
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.config.server.port).toBe(8181)
    expect(result.config.destinations.allowHttp).toBe(true)
    expect(result.config.targets['t']?.upstreamHeaders['x-api-version']).toBe('2')
  })

  it('refuses an upstream header name that is not a token', () => {
    const issues = issuesOf({
      targets: {
        t: { endpoints: [{ url: 'https://x.example' }], upstreamHeaders: { 'bad header': 'v' } },
      },
    })
    expect(issues).toEqual([
      expect.stringContaining('targets.t.upstreamHeaders: name "bad header" is not allowed'),
    ])
  })
})

describe('validateConfig: empty values', () => {
  it('treats a key without a value as not set, so its default applies', () => {
    const result = validateConfig({
      server: { maxBodyBytes: null, host: null },
      destinations: { allowHttp: null },
    })
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.config.server.maxBodyBytes).toBe(10 * 1024 * 1024)
    expect(result.config.server.host).toBe('0.0.0.0')
    expect(result.config.server.adminHost).toBe('127.0.0.1')
    expect(result.config.destinations.allowHttp).toBe(false)
  })
})

describe('routes, customers and trusted proxies', () => {
  const target = { api: { endpoints: [{ url: 'http://127.0.0.1:8089' }] } }

  it('fills route defaults: prefix /, free tier, callers by IP', () => {
    const result = validateConfig({ targets: target, routes: { api: { target: 'api' } } })
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.config.routes['api']).toMatchObject({
      pathPrefix: '/',
      tier: 'free',
      weight: 1,
      callers: {},
      forwardCaller: false,
    })
    expect(result.config.trustedProxies).toEqual([])
    expect(result.config.forwardedHeader).toBe('x-forwarded-for')
  })

  it('names every inbound mistake by path', () => {
    const issues = issuesOf({
      targets: target,
      routes: {
        a: { target: 'nope', pathPrefix: '/t/api', tier: 'gold' },
        b: { target: 'api', pathPrefix: '/v1/../x', host: 'API.example.com:80' },
        c: { target: 'api', pathPrefix: '/v1' },
        d: { target: 'api', pathPrefix: '/v1/' },
        e: {
          target: 'api',
          callers: {
            header: 'Authorization',
            jwt: { algorithm: 'HS256', publicKey: 'PEM' },
            ip: { tier: 'silver' },
          },
        },
        f: { target: 'api', pathPrefix: '/f', callers: { jwt: { algorithm: 'RS256' } } },
      },
      customers: {
        one: { credential: HASH, claim: 'x' },
        two: {},
        three: { credential: HASH, tier: 'gold' },
      },
      trustedProxies: ['10.0.0.0/8', '10.0.0.0/33', 'fd00::/8', 'proxy.local'],
    })
    expect(issues).toEqual(
      expect.arrayContaining([
        'routes.a.target: unknown target "nope"',
        'routes.a.pathPrefix: must not be under /t/: that is the key-authenticated /t/<target>/ form',
        expect.stringMatching(/^routes\.a\.tier: unknown tier "gold"/),
        'routes.b.pathPrefix: must be a plain path: no ?, #, %, \\ or . and .. segments',
        'routes.b.host: must be a lower-case host name without port (got "API.example.com:80")',
        'routes.d.pathPrefix: same host and prefix as routes.c',
        'routes.e.callers.jwt.header: is also callers.header: a header names the caller one way only',
        'routes.e.callers.jwt: HS256 needs secret (and neither publicKey nor jwksFile)',
        expect.stringMatching(/^routes\.e\.callers\.ip\.tier: unknown tier "silver"/),
        'routes.f.callers.jwt: RS256 needs exactly one of publicKey or jwksFile (and no secret)',
        'customers.one: set exactly one of credential or claim',
        'customers.two: set exactly one of credential or claim',
        'customers.three.credential: same credential as customers.one',
        expect.stringMatching(/^customers\.three\.tier: unknown tier "gold"/),
        expect.stringMatching(/^trustedProxies\[1\]: must be an IP address or CIDR/),
        expect.stringMatching(/^trustedProxies\[3\]: must be an IP address or CIDR/),
      ]),
    )
    expect(issues.filter((i) => i.startsWith('trustedProxies'))).toHaveLength(2)
  })
})

describe('validateConfig: models', () => {
  const targets = { openai: { endpoints: [{ url: 'https://api.openai.com' }] } }

  it('defaults to no models, and takes patterns to targets of the workspace', () => {
    const result = validateConfig({
      targets,
      workspaces: { a: { targets: ['openai'], models: { 'gpt-4o*': 'openai' } } },
    })
    expect(result.ok && result.config.workspaces['a']?.models).toEqual({ 'gpt-4o*': 'openai' })
    const plain = validateConfig({ workspaces: { a: {} } })
    expect(plain.ok && plain.config.workspaces['a']?.models).toEqual({})
  })

  it('names a model whose target the workspace may not reach', () => {
    expect(
      issuesOf({ targets, workspaces: { a: { targets: [], models: { 'gpt-*': 'openai' } } } }),
    ).toEqual([
      `workspaces.a.models["gpt-*"]: target "openai" must be one of this workspace's targets (none)`,
    ])
  })

  it('names a route model whose target does not exist', () => {
    expect(
      issuesOf({ targets, routes: { r: { target: 'openai', models: { 'gpt-*': 'nope' } } } }),
    ).toEqual([`routes.r.models["gpt-*"]: unknown target "nope"`])
  })

  it('names a malformed model name', () => {
    expect(issuesOf({ workspaces: { a: { models: { 'bad name': 'x' } } } })).toEqual([
      expect.stringMatching(/^workspaces\.a\.models: name "bad name" is not allowed/),
    ])
  })
})
