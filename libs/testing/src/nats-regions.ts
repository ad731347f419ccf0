import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { freePort } from './free-port.ts'
import type { NatsServer } from './nats-server.ts'
import { ServerProcess, tcpAnswers } from './server-process.ts'

export interface NatsRegionsOptions {
  /** One NATS cluster per name, each joined to every other by a gateway. */
  readonly regions: readonly string[]
  /** Default 1. */
  readonly serversPerRegion?: number
  /** How long start-up may take until JetStream and the gateways answer. Default 20 s. */
  readonly timeoutMs?: number
  /**
   * Puts something in front of each server's gateway port, a delaying or cutting TCP relay
   * (`startTcpRelay`) for regions a WAN apart: called once per server before any starts, with
   * where its gateway will listen; resolves with the port the other regions dial instead. The
   * server also advertises that port, so the gateway gossip never leads a peer around it.
   * Each region dials the other's gateway, so a relay in front of every server delays both
   * directions of a request: 15 ms each way makes a 30 ms round trip between regions.
   */
  readonly gatewayVia?: (gateway: GatewayListener) => Promise<number>
}

/** Where one server's gateway listens (on 127.0.0.1), for `NatsRegionsOptions.gatewayVia`. */
export interface GatewayListener {
  readonly server: string
  readonly region: string
  readonly port: number
}

/**
 * One server of a region. `start` brings it back on the same ports with the same config and
 * JetStream store, and resolves once it takes client connections; call `NatsRegions.ready` to
 * wait until it is back in JetStream and behind the gateways.
 */
export interface NatsRegionServer extends NatsServer {
  /** Its `server_name`, `<region>-<index>`: what JetStream reports as a stream's leader. */
  readonly name: string
  readonly region: string
}

export interface NatsRegion {
  /** The cluster and gateway name, which is also what JetStream reports as a stream's cluster. */
  readonly name: string
  /** Client URL of the region's first server. */
  readonly url: string
  /** Client URLs of all the region's servers. */
  readonly urls: readonly string[]
  readonly servers: readonly NatsRegionServer[]
}

export interface NatsRegions {
  /** In the order they were asked for. */
  readonly regions: readonly NatsRegion[]
  /** The region with this name; throws for an unknown one. */
  region(name: string): NatsRegion
  /**
   * Resolves once every server's JetStream API answers, every stream has a leader, and a request
   * from every server reaches a responder on every other (through routes and gateways). Start-up
   * already waited for it; call it again after restarting a server.
   */
  ready(timeoutMs?: number): Promise<void>
  /** Stops every server and removes their stores. */
  stop(): Promise<void>
}

/** Where one server listens; every server's config is written from the whole layout. */
interface Placement {
  readonly name: string
  readonly region: string
  readonly port: number
  readonly clusterPort: number
  readonly gatewayPort: number
  /** The gateway port other regions dial and this server advertises: its own, or a relay's. */
  readonly gatewayDialPort: number
}

interface Member extends Placement {
  readonly server: ServerProcess
}

/**
 * Real nats-servers (Debian's 2.9) on free loopback ports forming a JetStream super-cluster:
 * one NATS cluster per region, every cluster joined to every other by a gateway, each server
 * with its own temporary store. Resolves only once all of it works, which takes as long as
 * JetStream's first meta-leader election: 1 to 10 s, at random.
 */
export async function startNatsRegions(options: NatsRegionsOptions): Promise<NatsRegions> {
  const regionNames = checkedRegions(options.regions)
  const serversPerRegion = options.serversPerRegion ?? 1
  if (!Number.isInteger(serversPerRegion) || serversPerRegion < 1) {
    throw new RangeError(`serversPerRegion: must be an integer >= 1 (got ${serversPerRegion})`)
  }
  if (regionNames.length * serversPerRegion < 2) {
    // Clustered JetStream waits for routes forever when the whole thing is one server.
    throw new RangeError(
      'startNatsRegions: one region of one server never elects a JetStream meta leader; ' +
        'ask for two regions or two servers (or use startNats)',
    )
  }
  const ports = await distinctFreePorts(regionNames.length * serversPerRegion * 3)
  const listeners = regionNames.flatMap((region) =>
    Array.from({ length: serversPerRegion }, (_, index) => {
      const [port, clusterPort, gatewayPort] = ports.splice(0, 3) as [number, number, number]
      return { name: `${region}-${index}`, region, port, clusterPort, gatewayPort }
    }),
  )
  const layout: Placement[] = []
  for (const listener of listeners) {
    const via = options.gatewayVia
    const gatewayDialPort = via
      ? await via({ server: listener.name, region: listener.region, port: listener.gatewayPort })
      : listener.gatewayPort
    layout.push({ ...listener, gatewayDialPort })
  }
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-nats-regions-'))
  const members: Member[] = []
  const stop = async () => {
    await Promise.all(members.map((member) => member.server.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  const ready = async (timeoutMs = 20_000) => {
    try {
      await untilWorking(members, Date.now() + timeoutMs)
    } catch (err) {
      const logs = members.map((m) => `--- ${m.name}:\n${m.server.output.slice(-2_000)}`)
      throw new Error(
        `NATS regions ${regionNames.join(', ')} did not work within ${timeoutMs} ms: ` +
          `${(err as Error).message}\n${logs.join('\n')}`,
        { cause: err },
      )
    }
  }

  try {
    for (const placement of layout) {
      const serverDir = join(dir, placement.name)
      await mkdir(serverDir)
      const config = join(serverDir, 'nats.conf')
      await writeFile(config, configOf(placement, layout, join(serverDir, 'js')))
      // The server greets every client with its INFO line: that is when it takes clients.
      const serverProcess = new ServerProcess('nats-server', ['-c', config], () =>
        tcpAnswers(placement.port, '', 'INFO '),
      )
      members.push({ ...placement, server: serverProcess })
    }
    const started = await Promise.allSettled(members.map((member) => member.server.start()))
    const failed = started.find((outcome) => outcome.status === 'rejected')
    if (failed) throw failed.reason
    await ready(options.timeoutMs)
  } catch (err) {
    await stop()
    throw err
  }

  const regions: NatsRegion[] = regionNames.map((name) => {
    const servers = members
      .filter((member) => member.region === name)
      .map((member): NatsRegionServer => ({
        name: member.name,
        region: name,
        url: urlOf(member),
        port: member.port,
        stop: () => member.server.stop(),
        kill: () => member.server.kill(),
        start: () => member.server.start(),
        freeze: () => member.server.freeze(),
        thaw: () => member.server.thaw(),
      }))
    const urls = servers.map((server) => server.url)
    return { name, url: urls[0] as string, urls, servers }
  })
  return {
    regions,
    region(name) {
      const region = regions.find((r) => r.name === name)
      if (!region) {
        throw new Error(`unknown NATS region "${name}" (regions: ${regionNames.join(', ')})`)
      }
      return region
    },
    ready,
    stop,
  }
}

function checkedRegions(regions: readonly string[]): readonly string[] {
  if (regions.length === 0) throw new RangeError('regions: name at least one region')
  for (const name of regions) {
    // The name is a cluster and gateway name in the config and part of every server_name.
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new RangeError(`regions: "${name}" must be letters, digits, "-" or "_"`)
    }
  }
  const duplicate = regions.find((name, i) => regions.indexOf(name) !== i)
  if (duplicate !== undefined) throw new RangeError(`regions: "${duplicate}" is named twice`)
  return regions
}

/** freePort closes its probe before answering, so two calls can return the same port. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

function urlOf(placement: Placement): string {
  return `nats://127.0.0.1:${placement.port}`
}

function configOf(server: Placement, layout: readonly Placement[], storeDir: string): string {
  const peers = layout.filter((other) => other.region === server.region)
  // Every cluster block needs routes; a one-server region lists its own cluster URL, which the
  // server recognises and drops as a route to itself.
  const routes = peers.map((peer) => `nats-route://127.0.0.1:${peer.clusterPort}`)
  const gateways = [...new Set(layout.map((other) => other.region))]
    .filter((region) => region !== server.region)
    .map((region) => {
      const urls = layout
        .filter((other) => other.region === region)
        .map((other) => JSON.stringify(`nats://127.0.0.1:${other.gatewayDialPort}`))
      return `    { name: ${JSON.stringify(region)}, urls: [${urls.join(', ')}] }`
    })
  return [
    `server_name: ${JSON.stringify(server.name)}`,
    `listen: 127.0.0.1:${server.port}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    'cluster {',
    `  name: ${JSON.stringify(server.region)}`,
    `  listen: 127.0.0.1:${server.clusterPort}`,
    `  routes: [${routes.map((route) => JSON.stringify(route)).join(', ')}]`,
    '}',
    'gateway {',
    `  name: ${JSON.stringify(server.region)}`,
    `  listen: 127.0.0.1:${server.gatewayPort}`,
    `  advertise: "127.0.0.1:${server.gatewayDialPort}"`,
    '  gateways: [',
    gateways.join(',\n'),
    '  ]',
    '}',
    '',
  ].join('\n')
}

/**
 * Polls until JetStream's API answers through every server (its meta leader is elected 1 to 10 s
 * after start), every stream has a leader, and a request from every server reaches a responder
 * on every other one.
 */
async function untilWorking(members: readonly Member[], deadline: number): Promise<void> {
  const clients: Array<{ readonly member: Member; readonly nc: NatsConnection }> = []
  try {
    for (const member of members) {
      const nc = await until(deadline, `${member.name} took no client`, () =>
        // Pinned to this one server: a client would otherwise wander to its cluster peers.
        connect({ servers: urlOf(member), ignoreClusterUpdates: true, timeout: 1_000 }),
      )
      clients.push({ member, nc })
    }
    await Promise.all(
      clients.map(({ member, nc }) =>
        until(deadline, `JetStream API did not answer through ${member.name}`, async () => {
          const jsm = await jetstreamManager(nc, { timeout: 1_000, checkAPI: false })
          await jsm.getAccountInfo()
        }),
      ),
    )
    const [first] = clients
    if (first) await untilStreamsLed(first.nc, deadline)
    const subject = (member: Member) => `fairlane.testing.ready.${member.name}`
    for (const { member, nc } of clients) {
      nc.subscribe(subject(member), {
        callback: (_, message) => {
          message.respond()
        },
      })
    }
    await Promise.all(clients.map(({ nc }) => nc.flush()))
    await Promise.all(
      clients.flatMap((from) =>
        clients
          .filter((to) => to !== from)
          .map((to) =>
            until(deadline, `${from.member.name} could not reach ${to.member.name}`, () =>
              from.nc.request(subject(to.member), '', { timeout: 1_000 }),
            ),
          ),
      ),
    )
  } finally {
    await Promise.all(clients.map(({ nc }) => nc.close()))
  }
}

/**
 * A restarted server recovers its streams only once the meta leader is back, and each stream
 * then elects its own leader (seconds, even for R1): until then the stream answers nothing.
 */
async function untilStreamsLed(nc: NatsConnection, deadline: number): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: 1_000, checkAPI: false })
  const streams = await until(deadline, 'JetStream did not list its streams', async () => {
    const names: string[] = []
    for await (const name of jsm.streams.names()) names.push(name)
    return names
  })
  await Promise.all(
    streams.map((stream) =>
      until(deadline, `stream ${stream} had no leader`, async () => {
        const info = await jsm.streams.info(stream)
        if (!info.cluster?.leader) throw new Error('no leader yet')
      }),
    ),
  )
}

async function until<T>(deadline: number, failure: string, attempt: () => Promise<T>): Promise<T> {
  let last: unknown
  do {
    try {
      return await attempt()
    } catch (err) {
      last = err
    }
    await sleep(100)
  } while (Date.now() < deadline)
  throw new Error(`${failure} (last error: ${last instanceof Error ? last.message : String(last)})`)
}
