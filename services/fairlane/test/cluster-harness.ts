import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { freePort } from '@fairlane/testing'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

/**
 * Every node this test process started: a test that times out while a node is still
 * starting never gets its handle, so the nodes are also killed when the test process exits.
 */
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

/**
 * Kills every node this process started and has not seen exit, handles or not: a start
 * that failed among several in Promise.all leaves the others running without a handle, and
 * a test runner may end its workers without an 'exit' event.
 */
export async function killAllNodeProcesses(): Promise<void> {
  const running = [...children]
  await Promise.all(
    running.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once('exit', () => resolve())
          child.kill('SIGKILL')
        }),
    ),
  )
}

/** One Fairlane node as its own process, started as an operator would: `fairlane start` plus env. */
export interface NodeProcess {
  readonly nodeId: string
  readonly proxyUrl: string
  readonly adminUrl: string
  /** What the node printed (its JSON logs), for a failing test to show. */
  readonly output: () => string
  metrics(): Promise<string>
  /** How the process ended (null while it runs): its exit code, or the signal that killed it. */
  readonly ended: () => { code: number | null; signal: NodeJS.Signals | null } | null
  /** SIGTERM: drains, hands its shards over, exits (SIGKILL after 15 s). */
  stop(): Promise<void>
  /** SIGKILL: dies mid-flight, as a crashed machine would. */
  kill(): Promise<void>
}

export interface NodeProcessOptions {
  configPath: string
  nodeId: string
  env: Record<string, string>
  /** How long the node may take to answer /readyz (JetStream may still be electing). */
  readyWithinMs?: number
  /** False: return once the admin port answers /healthz, ready or not. */
  awaitReady?: boolean
}

/**
 * Starts a node on free ports. A port found free can be taken by another socket before the
 * node binds it (nodes, servers and clients all start at once here): then it goes again.
 */
export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(options)
    } catch (err) {
      if (attempt === 3 || !String(err).includes('EADDRINUSE')) throw err
    }
  }
}

async function startOnFreePorts(options: NodeProcessOptions): Promise<NodeProcess> {
  const port = await freePort()
  const adminPort = await freePort()
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=development', MAIN, 'start', '--config', options.configPath],
    {
      env: {
        PATH: process.env['PATH'] ?? '',
        ...options.env,
        FAIRLANE_NODE_ID: options.nodeId,
        FAIRLANE_PORT: String(port),
        FAIRLANE_ADMIN_PORT: String(adminPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  children.add(child)
  child.once('exit', () => children.delete(child))
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-50_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const readyWithinMs = options.readyWithinMs ?? 30_000
  const deadline = Date.now() + readyWithinMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.nodeId} exited:\n${output}`)
    const ready = await fetch(
      `${adminUrl}/${options.awaitReady === false ? 'healthz' : 'readyz'}`,
    ).then(
      (r) => r.ok,
      () => false,
    )
    if (ready) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${options.nodeId} not ready in ${readyWithinMs} ms:\n${output}`)
    }
    await sleep(100)
  }
  const signal = async (name: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill(name)
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  return {
    nodeId: options.nodeId,
    proxyUrl: `http://127.0.0.1:${port}`,
    adminUrl,
    output: () => output,
    ended: () =>
      child.exitCode === null && child.signalCode === null
        ? null
        : { code: child.exitCode, signal: child.signalCode },
    metrics: () => fetch(`${adminUrl}/metrics`).then((r) => r.text()),
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
  }
}

/** The value of one unlabelled (or exactly labelled) sample in Prometheus text. */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1))
  }
  return undefined
}

export interface LoadResult {
  /** Status code → count; 0 counts transport errors (a lost request). */
  readonly statuses: Map<number, number>
  readonly sent: number
}

/**
 * Clients spread over the nodes at a fixed offered rate, like a load balancer would do:
 * request i goes to node i mod n. Every answer is counted by status; a request that gets no
 * HTTP answer at all counts under 0. `targets()` is read per request, so a test can take a
 * node out of rotation (as a load balancer's health check would).
 */
export async function offerLoad(options: {
  targets: () => readonly string[]
  path: string
  headers: Record<string, string>
  ratePerSecond: number
  durationMs: number
}): Promise<LoadResult> {
  const agent = new Agent({ connections: 64, pipelining: 1, keepAliveTimeout: 10_000 })
  const statuses = new Map<number, number>()
  const count = (status: number): void => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  const inFlight = new Set<Promise<void>>()
  const started = performance.now()
  let sent = 0
  while (performance.now() - started < options.durationMs) {
    const due = Math.floor(((performance.now() - started) / 1000) * options.ratePerSecond)
    while (sent < due) {
      const targets = options.targets()
      const origin = targets[sent % targets.length] as string
      sent++
      const call: Promise<void> = request(origin + options.path, {
        dispatcher: agent,
        headers: options.headers,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      })
        .then(async (response) => {
          await response.body.dump()
          count(response.statusCode)
        })
        .catch(() => count(0))
        .finally(() => inFlight.delete(call))
      inFlight.add(call)
    }
    await sleep(2)
  }
  await Promise.all(inFlight)
  await agent.close()
  return { statuses, sent }
}
