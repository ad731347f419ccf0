import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

/** The Node binary running the bench: children get the same version, not whatever is on PATH. */
export const NODE = process.execPath

const TAIL_LINES = 40

export interface LaunchOptions {
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
}

/**
 * One process the bench started. Every Child is registered until it exits, so an interrupted
 * or crashed bench can still stop it (see installCleanup).
 */
export class Child {
  readonly name: string
  readonly pid: number
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>
  readonly #process: ChildProcess
  readonly #tail: string[] = []
  readonly #lineListeners = new Set<(line: string) => void>()
  #exit: number | string | undefined

  constructor(name: string, proc: ChildProcess) {
    if (proc.pid === undefined) throw new Error(`${name}: could not start (no pid)`)
    this.name = name
    this.pid = proc.pid
    this.#process = proc
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#exit = code ?? signal ?? 'unknown'
        resolve(this.#exit)
      })
    })
    // Both pipes are always drained: a child blocked on a full pipe would look like a slow system.
    for (const stream of [proc.stdout, proc.stderr]) {
      if (!stream) continue
      createInterface({ input: stream }).on('line', (line) => {
        this.#tail.push(line)
        if (this.#tail.length > TAIL_LINES) this.#tail.shift()
        for (const listener of this.#lineListeners) listener(line)
      })
    }
  }

  get running(): boolean {
    return this.#exit === undefined
  }

  /** The exit code or signal name once exited; undefined while running. */
  get exitStatus(): number | string | undefined {
    return this.#exit
  }

  /** The last lines the process printed, to explain why it failed. */
  output(): string {
    return this.#tail.map((line) => `  ${this.name}| ${line}`).join('\n')
  }

  /** The first output line (stdout or stderr) that matches, or an error if the child exits or time runs out. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const settle = (error: Error | undefined, match?: RegExpExecArray): void => {
        clearTimeout(timer)
        this.#lineListeners.delete(onLine)
        if (error) reject(error)
        else if (match) resolve(match)
      }
      const onLine = (line: string): void => {
        const match = pattern.exec(line)
        if (match) settle(undefined, match)
      }
      const timer = setTimeout(
        () =>
          settle(
            new Error(
              `${this.name}: no line matching ${pattern} within ${timeoutMs} ms\n${this.output()}`,
            ),
          ),
        timeoutMs,
      )
      this.#lineListeners.add(onLine)
      void this.exited.then((exit) =>
        settle(new Error(`${this.name} exited (${exit}) before it was ready\n${this.output()}`)),
      )
    })
  }

  /** SIGTERM, then SIGKILL after graceMs: a graceful stop lets Node write a --cpu-prof profile. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return
    this.#process.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#process.kill('SIGKILL')
        resolve()
      }, graceMs)
    })
    await Promise.race([this.exited, killed])
    clearTimeout(timer)
    await this.exited
  }

  /** Writes one line to the child's stdin: a question to a child that listens there. */
  send(line: string): void {
    if (!this.running) throw new Error(`${this.name} exited (${this.#exit}); cannot send "${line}"`)
    this.#process.stdin?.write(line + '\n')
  }

  /** For the process 'exit' hook, where nothing asynchronous runs any more. */
  killNow(): void {
    if (this.running) this.#process.kill('SIGKILL')
  }
}

const children: Child[] = []

export function launch(
  name: string,
  command: string,
  args: readonly string[],
  options: LaunchOptions = {},
): Child {
  const child = new Child(
    name,
    spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      // stdin stays open as a pipe: a child that watches it learns that the bench died even on SIGKILL.
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  )
  children.push(child)
  void child.exited.then(() => children.splice(children.indexOf(child), 1))
  return child
}

/** Stops every running child, the last started first (a proxy before its upstream). */
export async function stopAll(): Promise<void> {
  for (const child of [...children].reverse()) await child.stop()
}

let installed = false

/**
 * The bench never leaves a process behind: normal exit, Ctrl-C, SIGTERM and an uncaught error
 * all stop the children before the bench exits.
 */
export function installCleanup(): void {
  if (installed) return
  installed = true
  const stopThenExit = (code: number): void => {
    void stopAll().finally(() => process.exit(code))
  }
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted: stopping child processes\n')
    stopThenExit(130)
  })
  process.once('SIGTERM', () => stopThenExit(143))
  const crash = (err: unknown): void => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    )
    stopThenExit(1)
  }
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
  process.on('exit', () => {
    for (const child of children) child.killNow()
  })
}
