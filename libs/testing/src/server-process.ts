import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * A server binary run as a child of the test, on loopback: started, waited for until it
 * answers, and stopped (or killed) on teardown, so tests never share state with the machine's
 * own services or with each other.
 */
export class ServerProcess {
  readonly #command: string
  readonly #args: readonly string[]
  readonly #ready: () => Promise<boolean>
  #child: ChildProcess | undefined
  #output = ''

  constructor(command: string, args: readonly string[], ready: () => Promise<boolean>) {
    this.#command = command
    this.#args = args
    this.#ready = ready
  }

  /** What the server printed, for a failing test to show. */
  get output(): string {
    return this.#output
  }

  get running(): boolean {
    return (
      this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
    )
  }

  async start(timeoutMs = 10_000): Promise<void> {
    const child = spawn(this.#command, [...this.#args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-20_000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    const failed = new Promise<never>((_, reject) => {
      child.once('error', reject)
      child.once('exit', (code, signal) =>
        reject(
          new Error(
            `${this.#command} exited (${code ?? signal}) before it was ready:\n${this.#output}`,
          ),
        ),
      )
    })
    const deadline = Date.now() + timeoutMs
    const poll = async (): Promise<void> => {
      while (Date.now() < deadline) {
        if (await this.#ready().catch(() => false)) return
        await sleep(50)
      }
      throw new Error(`${this.#command} was not ready within ${timeoutMs} ms:\n${this.#output}`)
    }
    try {
      await Promise.race([poll(), failed])
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    } finally {
      failed.catch(() => undefined)
    }
  }

  /** Graceful stop (SIGTERM), then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM', 5_000)
  }

  /** SIGSTOP: the process keeps its sockets open and answers nothing, like a frozen machine. */
  freeze(): void {
    if (this.running) this.#child?.kill('SIGSTOP')
  }

  /** SIGCONT after `freeze`. */
  thaw(): void {
    if (this.running) this.#child?.kill('SIGCONT')
  }

  /** Dies at once, as a crashed machine would. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL', 5_000)
  }

  async #signal(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
    // A frozen process would not act on the signal.
    child.kill('SIGCONT')
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }
}

/** Connects, sends `probe`, and resolves true when the reply contains `expect`. */
export function tcpAnswers(port: number, probe: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    let received = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => {
      if (probe) socket.write(probe)
    })
    socket.on('data', (chunk) => {
      received += chunk.toString()
      if (received.includes(expect)) done(true)
    })
  })
}
