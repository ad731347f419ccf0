import type { OutgoingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import { TurnEndAnswers, type AnswerTarget } from './turn-end-answers.ts'

/** A response that records what was written to it, in one log shared by all of them. */
class RecordedResponse implements AnswerTarget {
  destroyed = false
  headersSent = false
  socket = { destroyed: false }
  readonly name: string
  readonly log: string[]
  readonly refuse: boolean
  constructor(name: string, log: string[], refuse = false) {
    this.name = name
    this.log = log
    this.refuse = refuse
  }
  writeHead(status: number, headers: OutgoingHttpHeaders): void {
    if (this.refuse) throw new TypeError('Invalid character in header content')
    this.headersSent = true
    this.log.push(`${this.name} head ${status} ${JSON.stringify(headers)}`)
  }
  end(body: Buffer | string): void {
    this.log.push(`${this.name} body ${String(body)}`)
  }
  destroy(): void {
    this.destroyed = true
    this.log.push(`${this.name} destroyed`)
  }
}

/** The turn's end as a test runs it: flushes queued by `schedule`, run on demand. */
function turns(): {
  schedule: (flush: () => void) => void
  end: () => void
  pending: () => number
} {
  let queued: (() => void)[] = []
  return {
    schedule: (flush) => queued.push(flush),
    end: () => {
      const now = queued
      queued = []
      for (const flush of now) flush()
    },
    pending: () => queued.length,
  }
}

describe('TurnEndAnswers', () => {
  it('writes nothing before the turn ends, then every answer of the turn in order', () => {
    const log: string[] = []
    const turn = turns()
    const answers = new TurnEndAnswers<string>(() => undefined, turn.schedule)
    answers.end(new RecordedResponse('a', log), 200, { 'x-a': '1' }, 'A', 'a')
    answers.end(new RecordedResponse('b', log), 429, {}, Buffer.from('B'), 'b')
    expect(log).toEqual([])
    expect(turn.pending()).toBe(1)
    turn.end()
    expect(log).toEqual(['a head 200 {"x-a":"1"}', 'a body A', 'b head 429 {}', 'b body B'])
    answers.end(new RecordedResponse('c', log), 200, {}, 'C', 'c')
    expect(turn.pending()).toBe(1)
    turn.end()
    expect(log.at(-1)).toBe('c body C')
  })

  it('skips a response whose client left or that was answered meanwhile', () => {
    const log: string[] = []
    const turn = turns()
    const answers = new TurnEndAnswers<string>(() => undefined, turn.schedule)
    const left = new RecordedResponse('left', log)
    const cut = new RecordedResponse('cut', log)
    const answered = new RecordedResponse('answered', log)
    answers.end(left, 200, {}, 'L', 'left')
    answers.end(cut, 200, {}, 'C', 'cut')
    answers.end(answered, 200, {}, 'A', 'answered')
    left.destroyed = true
    // The socket went this turn: the response hears of it only in the close phase, after the flush.
    cut.socket.destroyed = true
    answered.headersSent = true
    turn.end()
    expect(log).toEqual([])
  })

  it('tells `failed` of an answer Node refuses, and still writes the others', () => {
    const log: string[] = []
    const turn = turns()
    const failures: string[] = []
    const answers = new TurnEndAnswers<string>((context, err) => {
      failures.push(`${context}: ${(err as Error).message}`)
      answers.end(new RecordedResponse(`${context}-problem`, log), 502, {}, 'P', context)
    }, turn.schedule)
    answers.end(new RecordedResponse('bad', log, true), 200, { 'x-bad': '\u0001' }, 'X', 'bad')
    answers.end(new RecordedResponse('good', log), 200, {}, 'G', 'good')
    turn.end()
    expect(failures).toEqual(['bad: Invalid character in header content'])
    expect(log).toEqual(['good head 200 {}', 'good body G'])
    // The problem answer `failed` held goes out at the end of the next turn.
    turn.end()
    expect(log.slice(2)).toEqual(['bad-problem head 502 {}', 'bad-problem body P'])
  })

  it('cuts the connection when `failed` throws, instead of ending the process', () => {
    const log: string[] = []
    const turn = turns()
    const answers = new TurnEndAnswers<string>(() => {
      throw new Error('failed too')
    }, turn.schedule)
    answers.end(new RecordedResponse('bad', log, true), 200, {}, 'X', 'bad')
    answers.end(new RecordedResponse('good', log), 200, {}, 'G', 'good')
    turn.end()
    expect(log).toEqual(['bad destroyed', 'good head 200 {}', 'good body G'])
  })
})
