import { Writable } from 'node:stream'

/** Collects JSON log lines written by pino, so tests can read and grep them. */
export class LogCapture extends Writable {
  readonly #chunks: string[] = []

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.#chunks.push(chunk.toString())
    callback()
  }

  /** Everything written so far, exactly as it would have reached stdout. */
  get text(): string {
    return this.#chunks.join('')
  }

  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  }
}
