import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process'
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CHILD = fileURLToPath(new URL('./line-sink-child.ts', import.meta.url))

function child(mode: string): ChildProcessByStdio<Writable, Readable, Readable> {
  return spawn(process.execPath, ['--conditions=development', CHILD, mode], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
}

async function all(stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString()
}

const numbers = (out: string): number[] =>
  out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { n: number }).n)

/**
 * What a child writing to a reader that does not read reports on stderr, once it has: it
 * dropped lines past its bound, and its event loop kept turning meanwhile (400 ms of writing
 * with a 5 ms ticker).
 */
async function stuckReport(p: { stderr: Readable }): Promise<{ written: number; dropped: number }> {
  const [report] = (await once(p.stderr, 'data')) as [Buffer]
  const { written, dropped, ticks } = JSON.parse(report.toString()) as {
    written: number
    dropped: number
    ticks: number
  }
  expect(dropped).toBeGreaterThan(0)
  expect(ticks).toBeGreaterThan(20)
  return { written, dropped }
}

describe('LineSink', () => {
  it('writes every line in order, those of the exiting turn too', async () => {
    const p = child('order')
    const [out, err] = await Promise.all([all(p.stdout), all(p.stderr)])
    expect(err).toBe('')
    expect(numbers(out)).toEqual(Array.from({ length: 1050 }, (_, i) => i))
  })

  it('writes a line while the process lives on, not only when it exits', async () => {
    const p = child('live')
    const [chunk] = (await once(p.stdout, 'data')) as [Buffer]
    expect(numbers(chunk.toString())).toEqual([1])
    p.stdin.write('go\n')
    await once(p, 'exit')
  })

  it.each(['stuck', 'stuck-large'])(
    'never blocks on a reader that stops reading: holds up to its bound, drops and counts the rest, whole lines only, and writes again once read (%s)',
    async (mode) => {
      const p = child(mode)
      // Nothing reads stdout until the child has reported.
      const { written, dropped } = await stuckReport(p)
      const out = all(p.stdout)
      p.stdin.write('go\n')
      const got = numbers(await out)
      expect(got.at(-1)).toBe(-1)
      // Every line once, in order: a write the pipe took in part goes on where it stopped.
      const kept = got.slice(0, -1)
      expect(new Set(kept).size).toBe(kept.length)
      expect(kept).toEqual([...kept].sort((a, b) => a - b))
      expect(kept.length).toBe(written - dropped)
    },
  )

  it('counts as dropped what it held when the reader closed its end, and says so once', async () => {
    const p = child('closed')
    const stderr: string[] = []
    p.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()))
    await new Promise<void>((resolve) => {
      const check = () => (stderr.join('').includes('held') ? resolve() : undefined)
      p.stderr.on('data', check)
    })
    p.stdout.destroy()
    p.stdin.write('go\n')
    await once(p, 'exit')
    const report =
      stderr
        .join('')
        .split('\n')
        .find((l) => l.startsWith('{')) ?? '{}'
    const { written, dropped, failures } = JSON.parse(report) as {
      written: number
      dropped: number
      failures: string[]
    }
    expect(failures).toEqual(['EPIPE'])
    // 1,010 lines, of which the pipe took a few hundred KB before its reader left: the rest,
    // held or written after, is counted.
    expect(written).toBe(1010)
    expect(dropped).toBeGreaterThan(500)
    expect(dropped).toBeLessThanOrEqual(written)
  })

  it('writes through the thread pool on a file only, synchronously on a pipe or a socket', () => {
    const kind = (stdout: 'pipe' | number) =>
      spawnSync(process.execPath, ['--conditions=development', CHILD, 'kind'], {
        stdio: ['ignore', stdout, 'pipe'],
      }).stderr.toString()
    expect(kind('pipe')).toBe('false')
    const dir = mkdtempSync(join(tmpdir(), 'line-sink-'))
    const fd = openSync(join(dir, 'out.log'), 'w')
    try {
      expect(kind(fd)).toBe('true')
    } finally {
      closeSync(fd)
      rmSync(dir, { recursive: true })
    }
  })

  it('writes every line in order to a file, from the thread pool, those of the exiting turn too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'line-sink-'))
    const path = join(dir, 'out.log')
    const fd = openSync(path, 'w')
    try {
      const { stderr } = spawnSync(process.execPath, ['--conditions=development', CHILD, 'order'], {
        stdio: ['ignore', fd, 'pipe'],
      })
      expect(stderr.toString()).toBe('')
      const expected = Array.from({ length: 1050 }, (_, i) => i)
      expect(numbers(readFileSync(path, 'utf8'))).toEqual(expected)
    } finally {
      closeSync(fd)
      rmSync(dir, { recursive: true })
    }
  })

  it('never waits on a descriptor whose writes block: the write waits in the thread pool, the rest is held to the bound, and all of it goes, in order, once read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'line-sink-'))
    const fifo = join(dir, 'out.fifo')
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0)
    // Opened without waiting for a writer; read only once the child has reported.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
    try {
      const p = spawn(process.execPath, ['--conditions=development', CHILD, 'blocked', fifo], {
        stdio: ['pipe', 'ignore', 'pipe'],
      })
      const { written, dropped } = await stuckReport(p)
      // Once read, the blocked write ends and the lines held behind it follow on their own,
      // while the child lives: it is told to exit only after they are all here.
      let out = await readLines(reader, written - dropped)
      p.stdin.write('go\n')
      out += await readUntilClosed(reader)
      const got = numbers(out)
      expect(got.at(-1)).toBe(-1)
      const kept = got.slice(0, -1)
      expect(kept).toEqual([...new Set(kept)].sort((a, b) => a - b))
      expect(kept.length).toBe(written - dropped)
    } finally {
      closeSync(reader)
      rmSync(dir, { recursive: true })
    }
  })
})

/**
 * Reads a non-blocking descriptor until `done` says what was read is enough, or every writer
 * has closed it.
 */
async function readWhile(fd: number, done: (text: string) => boolean): Promise<string> {
  const chunks: Buffer[] = []
  const buffer = Buffer.alloc(64 * 1024)
  for (;;) {
    let n: number
    try {
      n = readSync(fd, buffer)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      await sleep(5)
      continue
    }
    if (n > 0) chunks.push(Buffer.from(buffer.subarray(0, n)))
    const text = Buffer.concat(chunks).toString()
    if (n === 0 || done(text)) return text
  }
}

const readUntilClosed = (fd: number): Promise<string> => readWhile(fd, () => false)

/** Reads until `count` whole lines are in. */
const readLines = (fd: number, count: number): Promise<string> =>
  readWhile(fd, (text) => text.split('\n').length - 1 >= count)
