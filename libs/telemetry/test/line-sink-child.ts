// A process writing log lines through a LineSink on its standard output, driven by
// line-sink.test.ts: `order` writes over several turns and exits at once; `stuck` writes
// while its reader does not read and reports on stderr what happened (`stuck-large`: with a
// bound above what the pipe takes, so a turn's write is taken in part); `closed` writes
// into a pipe whose reader then closes it; `live` writes one line and stays alive until told
// to exit, so the line can only have come from the sink's timer; `blocked` writes through the
// thread pool into a FIFO opened for blocking writes (argv[3]) whose reader does not read
// until told, with a bound above what the FIFO takes, so lines wait behind the blocked write;
// `kind` says whether stdout's sink writes through the thread pool.
import { openSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { LineSink, stdoutLines } from '../src/line-sink.ts'

const line = (i: number, pad = ''): string => `{"n":${i}${pad ? `,"pad":"${pad}"` : ''}}\n`

async function order(): Promise<void> {
  // The test gives this child a pipe for stdout: the sink is there.
  const sink = stdoutLines() as LineSink
  let n = 0
  for (let turn = 0; turn < 20; turn++) {
    for (let i = 0; i < 50; i++) sink.write(line(n++))
    await sleep(1)
  }
  // Written in the same turn as the exit: the exit writes them.
  for (let i = 0; i < 50; i++) sink.write(line(n++))
  process.exit(0)
}

async function stuck(maxHeldBytes: number, fifo?: string): Promise<void> {
  if (fifo === undefined) void process.stdout
  const sink =
    fifo === undefined
      ? new LineSink({ fd: 1, maxHeldBytes, retryMs: 5 })
      : new LineSink({ fd: openSync(fifo, 'w'), mayBlock: true, maxHeldBytes })
  let ticks = 0
  const ticker = setInterval(() => ticks++, 5)
  const pad = 'x'.repeat(1000)
  let n = 0
  for (let turn = 0; turn < 40; turn++) {
    for (let i = 0; i < 100; i++) sink.write(line(n++, pad))
    await sleep(10)
  }
  clearInterval(ticker)
  process.stderr.write(JSON.stringify({ written: n, dropped: sink.dropped, ticks }) + '\n')
  // The reader reads again once it has the report: one more line, then exit.
  process.stdin.once('data', () => {
    sink.write(line(-1))
    setTimeout(() => process.exit(0), 50)
  })
}

async function closed(): Promise<void> {
  const failures: string[] = []
  void process.stdout
  const sink = new LineSink({
    fd: 1,
    maxHeldBytes: 4 * 1024 * 1024,
    retryMs: 5,
    onFailure: (err) => failures.push(err.code ?? ''),
  })
  const pad = 'x'.repeat(1000)
  let n = 0
  for (let turn = 0; turn < 10; turn++) {
    for (let i = 0; i < 100; i++) sink.write(line(n++, pad))
    await sleep(10)
  }
  process.stderr.write('held\n')
  process.stdin.once('data', () => {
    void (async () => {
      // The reader has closed its end: what is held and what comes now has nowhere to go.
      await sleep(30)
      for (let i = 0; i < 10; i++) sink.write(line(n++))
      await sleep(30)
      process.stderr.write(JSON.stringify({ written: n, dropped: sink.dropped, failures }) + '\n')
      process.exit(0)
    })()
  })
}

function live(): void {
  ;(stdoutLines() as LineSink).write(line(1))
  process.stdin.once('data', () => process.exit(0))
}

const mode = process.argv[2]
if (mode === 'kind') process.stderr.write(String(stdoutLines()?.mayBlock))
else if (mode === 'stuck') await stuck(64 * 1024)
else if (mode === 'stuck-large') await stuck(1024 * 1024)
else if (mode === 'blocked') await stuck(1024 * 1024, process.argv[3])
else if (mode === 'closed') await closed()
else if (mode === 'live') live()
else await order()
