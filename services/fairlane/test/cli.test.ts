import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { hashKeySecret } from './node-harness.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const QUICKSTART = fileURLToPath(new URL('../../../examples/quickstart.yaml', import.meta.url))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the real CLI in its own Node process, as `npm run fairlane` would. A command that
 * should have exited but started a node instead is stopped after a while (code 0 then).
 */
function fairlane(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=development', MAIN, ...args], {
      env: { ...process.env, ...env },
    })
    const stray = setTimeout(() => child.kill('SIGTERM'), 15_000)
    child.on('close', () => clearTimeout(stray))
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

async function tempFile(name: string, text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'fairlane-cli-')), name)
  await writeFile(path, text)
  return path
}

const INVALID = `targets:
  echo:
    endpoints:
      - url: api.openai.com
    timeouts: { connectMs: -1 }
workspaces:
  demo:
    targets: [echo, ghost]
    keys: [{ id: k, hash: nope }]
`

let upstream: LoopbackUpstream

beforeAll(async () => {
  upstream = await startUpstream()
})

afterAll(async () => {
  await upstream.close()
})

describe('fairlane config check', () => {
  it('accepts the quickstart example', async () => {
    const run = await fairlane(['config', 'check', QUICKSTART])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('valid (1 targets, 1 workspaces, 1 keys)')
  })

  it('lists every problem by path and exits 2', async () => {
    const run = await fairlane(['config', 'check', await tempFile('bad.yaml', INVALID)])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('targets.echo.timeouts.connectMs: must be >= 1')
    expect(run.stderr).toContain('workspaces.demo.keys[0].hash: must match ^sha256:[0-9a-f]{64}$')
  })

  it('reports a deeply nested file as a config problem (exit 2), not a crash', async () => {
    const depth = 20_000
    const path = await tempFile('deep.json', `{"x": ${'['.repeat(depth)}${']'.repeat(depth)}}`)
    const run = await fairlane(['config', 'check', path])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('x[0][0][0]…: nested deeper than 32 levels')
    expect(run.stderr).not.toContain('RangeError')
  })

  it('reports semantic problems once the schema holds', async () => {
    const path = await tempFile(
      'semantic.yaml',
      INVALID.replace('timeouts: { connectMs: -1 }', '').replace(
        'hash: nope',
        `hash: ${hashKeySecret('x')}`,
      ),
    )
    const run = await fairlane(['config', 'check', path])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(
      'targets.echo.endpoints[0].url: must be an absolute http(s) URL (got "api.openai.com")',
    )
    expect(run.stderr).toContain('workspaces.demo.targets[1]: unknown target "ghost"')
  })
})

describe('fairlane start', () => {
  it('refuses an invalid config with exit code 2 before listening', async () => {
    const run = await fairlane(['start', '--config', await tempFile('bad.yaml', INVALID)])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/\d+ problems/)
  })

  it('reads FAIRLANE_CONFIG, serves the quickstart, and drains on SIGTERM', async () => {
    const [port, adminPort] = [await freePort(), await freePort()]
    const child = spawn(process.execPath, ['--conditions=development', MAIN], {
      env: {
        ...process.env,
        FAIRLANE_CONFIG: QUICKSTART,
        FAIRLANE_PORT: String(port),
        FAIRLANE_ADMIN_PORT: String(adminPort),
        ECHO_URL: upstream.url,
      },
    })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    try {
      await expect
        .poll(
          async () =>
            (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => null))?.status,
          {
            timeout: 10_000,
          },
        )
        .toBe(200)
      const response = await fetch(`http://127.0.0.1:${port}/t/echo/hi`, {
        headers: { authorization: 'Bearer fl_demo_quickstart' },
      })
      expect(response.status).toBe(200)
      expect(upstream.requests.at(-1)?.url).toBe('/hi')
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
    expect(stdout).toContain('"msg":"fairlane started"')
    expect(stdout).toContain('"msg":"shutting down"')
  })

  it.each([
    [['start', '--confg', 'my.yaml'], 'unknown option --confg'],
    [['--configg=my.yaml'], 'unknown option --configg'],
    [['start', 'my.yaml'], 'unexpected argument "my.yaml"'],
  ])('refuses %j with usage and exit 2 instead of starting the quickstart', async (args, why) => {
    const run = await fairlane(args, { FAIRLANE_PORT: '0', FAIRLANE_ADMIN_PORT: '0' })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(why)
    expect(run.stderr).toContain('Usage: fairlane start [--config FILE]')
    expect(run.stdout).not.toContain('fairlane started')
  })

  it('names a bad FAIRLANE_PORT', async () => {
    const run = await fairlane(['start', '--config', QUICKSTART], { FAIRLANE_PORT: 'eighty' })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('FAIRLANE_PORT')
  })
})

describe('fairlane keys hash', () => {
  it('makes a new key and prints the hash that authenticates it', async () => {
    const run = await fairlane(['keys', 'hash'])
    expect(run.code).toBe(0)
    const key = /key: {2}(fl_[A-Za-z0-9_-]{32})/.exec(run.stdout)?.[1]
    expect(key).toBeDefined()
    expect(run.stdout).toContain(`hash: ${hashKeySecret(key as string)}`)
  })

  it('hashes a given key', async () => {
    const run = await fairlane(['keys', 'hash', 'fl_demo_quickstart'])
    expect(run.stdout.trim()).toBe(hashKeySecret('fl_demo_quickstart'))
  })

  it('prints usage for --help without starting anything', async () => {
    const run = await fairlane(['--help'])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('Usage: fairlane')
  })

  it('refuses a second KEY with usage and exit 2', async () => {
    const run = await fairlane(['keys', 'hash', 'fl_a', 'fl_b'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Usage: fairlane keys hash [KEY]')
    expect(run.stdout).toBe('')
  })

  it('rejects an unknown command with usage and exit 2', async () => {
    const run = await fairlane(['frobnicate'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Usage: fairlane')
  })
})

describe('fairlane top', () => {
  it('prints the busiest lanes of a running node once, and says when no node answers', async () => {
    const [port, adminPort] = [await freePort(), await freePort()]
    const child = spawn(process.execPath, ['--conditions=development', MAIN], {
      env: {
        ...process.env,
        FAIRLANE_CONFIG: QUICKSTART,
        FAIRLANE_PORT: String(port),
        FAIRLANE_ADMIN_PORT: String(adminPort),
        ECHO_URL: upstream.url,
      },
    })
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    try {
      await expect
        .poll(
          async () =>
            (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => null))?.status,
          { timeout: 10_000 },
        )
        .toBe(200)
      // The demo key takes 5 at once: 8 at once leave some waiting in its lane. Sent again
      // before each run, so the lane is inside the 10 s window however slow the CLI starts.
      const burst = () =>
        Promise.all(
          Array.from({ length: 8 }, () =>
            fetch(`http://127.0.0.1:${port}/t/echo/hi`, {
              headers: { authorization: 'Bearer fl_demo_quickstart' },
            }).then((r) => r.text()),
          ),
        )
      await burst()
      const run = await fairlane(['top', '--once'], { FAIRLANE_ADMIN_PORT: String(adminPort) })
      expect(run.stderr, run.stdout).toBe('')
      expect(run.code).toBe(0)
      const lines = run.stdout.split('\n')
      expect(lines[0]).toMatch(/^fairlane top .* 1 node \(/)
      expect(run.stdout).toMatch(/^WORKSPACE\s+CALLER\s+TARGET\s+TIER\s+ADMITTED\/S/m)
      // 8 admitted over a window of at most 10 s; the last waited for the key's rate.
      expect(run.stdout, run.stdout).toMatch(
        /^demo\s+demo-quickstart\s+echo\s+free\s+[\d.]+\s+0\s+≤\d+m?s\s+0\s*$/m,
      )
      await burst()
      const byWorkspace = await fairlane(['top', '--once', '--by', 'workspace'], {
        FAIRLANE_ADMIN_URL: `127.0.0.1:${adminPort}`,
      })
      expect(byWorkspace.stdout).toMatch(/^WORKSPACE\s+TIER\s+ADMITTED\/S/m)
      expect(byWorkspace.stdout, byWorkspace.stdout).toMatch(/^demo\s+free\s/m)
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
    const nobody = await fairlane(['top', '--once', '--admin', `127.0.0.1:${adminPort}`])
    expect(nobody.code).toBe(1)
    expect(nobody.stdout).toContain(`http://127.0.0.1:${adminPort}: not answering`)
  })

  it('ends with 0 when its output pipe closes, as under `| head`', async () => {
    const child = spawn(
      process.execPath,
      ['--conditions=development', MAIN, 'top', '--admin', '127.0.0.1:1', '--interval', '0.2'],
      { env: process.env },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    // The reader goes away after the first screen.
    child.stdout.once('data', () => child.stdout.destroy())
    const stray = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    clearTimeout(stray)
    expect(stderr).not.toContain('EPIPE')
    expect(code).toBe(0)
  })
})
