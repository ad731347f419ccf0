import { createHash, randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '@fairlane/testing'
import { launch, NODE, type Child } from '../lib/child.ts'
import { REPO_ROOT } from '../lib/paths.ts'
import type { Upstream } from '../lib/upstream.ts'
import type { System } from './system.ts'

const MAIN = join(REPO_ROOT, 'services/fairlane/src/main.ts')
const LOG_LEVEL = 'warn'

export interface FairlaneEmbeddedOptions {
  /** Directory for a `--cpu-prof` profile, written when the process stops; none when omitted. */
  readonly profileDir?: string
  readonly readyTimeoutMs?: number
}

async function waitUntilReady(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (!child.running)
      throw new Error(`${child.name} exited before it was ready\n${child.output()}`)
    try {
      const response = await fetch(url)
      await response.body?.cancel()
      if (response.status === 200) return
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline)
      throw new Error(`${child.name}: ${url} not 200 within ${timeoutMs} ms\n${child.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Fairlane in embedded mode as a real process (`main.ts start`), in front of the upstream,
 * with one key whose limits are far above anything the bench can send: the figures are the
 * cost of the request path, never of a refusal.
 */
export async function startFairlaneEmbedded(
  upstream: Upstream,
  options: FairlaneEmbeddedOptions = {},
): Promise<System> {
  const key = 'fl_bench_' + randomBytes(24).toString('base64url')
  const config = {
    // Request logs at info would put one JSON line per request on stdout: I/O the bench would measure.
    logging: { level: LOG_LEVEL },
    targets: {
      echo: { endpoints: [{ url: upstream.url }], allowPrivateAddresses: true },
    },
    workspaces: {
      bench: {
        targets: ['echo'],
        keys: [
          {
            id: 'bench',
            hash: 'sha256:' + createHash('sha256').update(key).digest('hex'),
            limits: { rate: { rps: 1_000_000, burst: 1_000_000 } },
          },
        ],
      },
    },
  }
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-bench-'))
  // On exit, not on stop: an interrupted bench must not leave a key hash behind in /tmp either.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const configPath = join(dir, 'fairlane.json')
  await writeFile(configPath, JSON.stringify(config, null, 2))

  const [port, adminPort] = [await freePort(), await freePort()]
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : []
  const child = launch(
    'fairlane',
    NODE,
    ['--conditions=development', ...profile, MAIN, 'start', '--config', configPath],
    {
      cwd: REPO_ROOT,
      env: { FAIRLANE_PORT: String(port), FAIRLANE_ADMIN_PORT: String(adminPort) },
    },
  )
  try {
    await waitUntilReady(
      child,
      `http://127.0.0.1:${adminPort}/readyz`,
      options.readyTimeoutMs ?? 30_000,
    )
  } catch (err) {
    await child.stop()
    throw err
  }
  return {
    name: 'fairlane',
    processes: { fairlane: child },
    request: {
      url: `http://127.0.0.1:${port}/t/echo/bench`,
      headers: { authorization: `Bearer ${key}` },
    },
    notes: [
      `embedded mode, one process; logging.level ${LOG_LEVEL} (no per-request log lines)`,
      ...(options.profileDir ? ['--cpu-prof on: figures include the profiler'] : []),
    ],
    ...(options.profileDir ? { profileDir: options.profileDir } : {}),
    stop: () => child.stop(),
  }
}
