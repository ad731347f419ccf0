import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../../../services/fairlane/src/main.ts', import.meta.url))
const VECTORS = new URL('../../../spec/test-vectors/', import.meta.url)

export interface FairlaneProcess {
  /** The proxy port's URL. */
  readonly url: string
  close(): Promise<void>
}

/**
 * A real Fairlane, embedded, in its own process as `fairlane start` runs it, on free ports,
 * with one of the client suites' configs in spec/test-vectors/ (`fairlane.yaml` or
 * `fairlane-jobs.yaml`) and `env` for its references (ECHO_URL, HOOKS_URL). Its data
 * directory is new, so no job of an earlier run is there. The client is a package of its
 * own and may not import the service: it runs it.
 */
export function startFairlane(
  env: Readonly<Record<string, string>>,
  config = 'fairlane.yaml',
): Promise<FairlaneProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=development',
      MAIN,
      'start',
      '--config',
      fileURLToPath(new URL(config, VECTORS)),
    ],
    {
      env: {
        ...process.env,
        ...env,
        FAIRLANE_PORT: '0',
        FAIRLANE_ADMIN_PORT: '0',
        FAIRLANE_DATA_DIR: mkdtempSync(join(tmpdir(), 'fairlane-client-')),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`fairlane exited with ${code} before it started`)),
    )
    // Every line is read, so a full pipe never blocks the server's logging.
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.includes('"fairlane started"')) return
      const { proxy } = JSON.parse(line) as { proxy: string }
      resolve({
        url: proxy,
        close: async () => {
          child.kill('SIGTERM')
          await exited
        },
      })
    })
  })
}
