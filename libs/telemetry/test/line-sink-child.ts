// A process writing log lines through a LineSink on its standard output, driven by
// line-sink.test.ts: `order` writes over several turns and exits at once; `stuck` writes
// while its reader does not read and reports on stderr what happened.
import { setTimeout as sleep } from 'node:timers/promises'
import { LineSink, stdoutLines } from '../src/line-sink.ts'

const line = (i: number, pad = ''): string => `{"n":${i}${pad ? `,"pad":"${pad}"` : ''}}\n`

async function order(): Promise<void> {
  const sink = stdoutLines()
  let n = 0
  for (let turn = 0; turn < 20; turn++) {
    for (let i = 0; i < 50; i++) sink.write(line(n++))
    await sleep(1)
  }
  // Written in the same turn as the exit: the exit writes them.
  for (let i = 0; i < 50; i++) sink.write(line(n++))
  process.exit(0)
}

async function stuck(): Promise<void> {
  void process.stdout
  const sink = new LineSink({ fd: 1, maxHeldChars: 64 * 1024, retryMs: 5 })
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

await (process.argv[2] === 'stuck' ? stuck() : order())
