import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '@fairlane/testing'

const MAIN = fileURLToPath(new URL('../../services/fairlane/src/main.ts', import.meta.url))

export interface FairlaneProcess {
  readonly proxyUrl: string
  readonly adminUrl: string
  stop(): Promise<void>
}

/** Starts the real `fairlane start` on free ports and waits until it is ready. */
export async function startFairlane(
  config: string,
  env: Record<string, string>,
): Promise<FairlaneProcess> {
  const [port, adminPort] = [await freePort(), await freePort()]
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=development',
      MAIN,
      'start',
      '--config',
      fileURLToPath(new URL(`../${config}`, import.meta.url)),
    ],
    {
      env: {
        ...process.env,
        ...env,
        FAIRLANE_PORT: String(port),
        FAIRLANE_ADMIN_PORT: String(adminPort),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  }
  const adminUrl = `http://127.0.0.1:${adminPort}`
  for (let i = 0; ; i++) {
    const ready = await fetch(`${adminUrl}/readyz`).catch(() => undefined)
    if (ready?.status === 200) break
    if (i > 100 || child.exitCode !== null) {
      await stop()
      throw new Error('Fairlane did not start')
    }
    await sleep(100)
  }
  return { proxyUrl: `http://127.0.0.1:${port}`, adminUrl, stop }
}

export const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s)
export const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s)
