import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { probeLaunch } from './probe.ts'

/** The Node binary running the bench: children get the same version, not whatever is on PATH. */
export const NODE = process.execPath

const TAIL_LINES = 40

export interface LaunchOptions {
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  /**
   * Start it in a process group of its own and signal the whole group: for servers that fork
   * workers (nginx), whose workers would outlive a master killed with SIGKILL. The group is
   * also out of the terminal's reach, so Ctrl-C reaches it only through the bench's cleanup,
   * in the order the bench chooses.
   */
  readonly group?: boolean
  /** A Node process to load the probe into (probe.ts): event-loop delay and heap on request. */
  readonly probe?: boolean
  /**
   * Standard output to a FIFO that a `cat` of its own drains into this file, instead of a pipe
   * the bench reads: for a server that logs a line per request, so it writes as it would in a
   * container, whose runtime reads stdout from a FIFO and keeps up, never blocked behind a
   * bench that is busy generating load. The `cat` is not among the processes whose CPU is
   * counted, as a container runtime's is not. Its error output stays a pipe.
   */
  readonly stdoutLog?: string
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
  /** Loaded with the probe: sampleProcess(pid) answers for it. */
  readonly probed: boolean
  readonly #process: ChildProcess
  readonly #group: boolean
  readonly #tail: string[] = []
  readonly #lineListeners = new Set<(line: string) => void>()
  #exit: number | string | undefined

  constructor(name: string, proc: ChildProcess, group = false, probed = false) {
    if (proc.pid === undefined) throw new Error(`${name}: could not start (no pid)`)
    this.name = name
    this.probed = probed
    this.pid = proc.pid
    this.#process = proc
    this.#group = group
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

  /** Calls `listener` with every line printed from now on; the returned function unsubscribes. */
  onLine(listener: (line: string) => void): () => void {
    this.#lineListeners.add(listener)
    return () => this.#lineListeners.delete(listener)
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
    this.#signal('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#signal('SIGKILL')
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
    if (this.running) this.#signal('SIGKILL')
  }

  #signal(signal: NodeJS.Signals): void {
    if (!this.#group) {
      this.#process.kill(signal)
      return
    }
    try {
      // A negative pid signals the group: the master and every worker it forked.
      process.kill(-this.pid, signal)
    } catch {
      // The group is gone already.
    }
  }
}

const children: Child[] = []

/**
 * Kills, when the bench dies, the process groups it left running. A bench killed with SIGKILL
 * runs no cleanup: its Node children notice their stdin closing and exit, but nginx and
 * redis-server would stay. awk reads `+ <pgid>` when a group starts and `- <pgid>` when it is
 * gone; at end of input (the bench exited, however) it kills the groups still listed. Detached,
 * so a Ctrl-C to the terminal's process group does not end it before the bench's own cleanup.
 */
let groupGuard: ChildProcess | undefined

function guardGroup(pid: number, exited: Promise<unknown>): void {
  if (!groupGuard) {
    groupGuard = spawn(
      'awk',
      [
        '$1 == "+" { g[$2] = 1 } $1 == "-" { delete g[$2] } ' +
          'END { for (k in g) system("kill -9 -" k " 2>/dev/null") }',
      ],
      { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
    )
    // Without awk the bench still stops its groups itself; only the SIGKILL case is not covered.
    groupGuard.once('error', () => undefined)
    groupGuard.stdin?.on('error', () => undefined)
  }
  groupGuard.stdin?.write(`+ ${pid}\n`)
  void exited.then(() => groupGuard?.stdin?.write(`- ${pid}\n`))
}

/**
 * A FIFO next to `path` that a `cat` drains into it, as a container runtime drains a
 * container's stdout: the descriptor of its write end, for the child's stdout. Opened read
 * and write, so the open does not wait for the `cat` (Linux allows it on a FIFO); `cat` sees
 * the end when the child, the last holder once the bench closes its copy, exits.
 */
function drainInto(path: string): number {
  const fifo = `${path}.fifo`
  const made = spawnSync('mkfifo', [fifo])
  if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${String(made.stderr)}`)
  const fd = openSync(fifo, 'r+')
  const cat = spawn('sh', ['-c', 'exec cat < "$0" >> "$1"', fifo, path], { stdio: 'ignore' })
  cat.once('error', () => undefined)
  return fd
}

export function launch(
  name: string,
  command: string,
  args: readonly string[],
  options: LaunchOptions = {},
): Child {
  const probe = options.probe ? probeLaunch() : { args: [], env: {} }
  const drain = options.stdoutLog === undefined ? undefined : drainInto(options.stdoutLog)
  let proc: ChildProcess
  try {
    proc = spawn(command, [...probe.args, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env, ...probe.env },
      // stdin stays open as a pipe: a child that watches it learns that the bench died even on SIGKILL.
      stdio: ['pipe', drain ?? 'pipe', 'pipe'],
      detached: options.group ?? false,
    })
  } finally {
    // The child has its own copy of the drain's end: the drain ends when the child does.
    if (drain !== undefined) closeSync(drain)
  }
  // A missing binary is reported through 'error' (and pid stays undefined), not thrown.
  proc.once('error', () => undefined)
  const child = new Child(name, proc, options.group ?? false, options.probe ?? false)
  if (options.group) guardGroup(child.pid, child.exited)
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
