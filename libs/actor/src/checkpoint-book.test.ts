import { describe, expect, it } from 'vitest'
import { MemoryLedger, type ScopeLimit } from '@fairlane/limits'
import { AdaptiveLanes } from './adaptive-lanes.ts'
import { CheckpointBook } from './checkpoint-book.ts'

const rate: ScopeLimit = {
  id: 'key:w/a',
  kind: 'key',
  rate: { limit: 1, periodMs: 60_000, burst: 1 },
}
const slots: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 2 }

function book(tracking: boolean, now = () => 0) {
  const ledger = new MemoryLedger({ now })
  return { ledger, book: new CheckpointBook({ ledger, lanes: new AdaptiveLanes(now), tracking }) }
}

describe('CheckpointBook', () => {
  it('saves the rate scopes a partition decided with, once per change', () => {
    const { ledger, book: pages } = book(true)
    ledger.decide([rate, slots], 1)
    pages.touched('echo#0', [rate, slots])
    expect(pages.changedPartitions).toEqual(['echo#0'])
    const saved = pages.snapshot('echo#0', true)
    // Concurrency is not saved: its slots are held by requests, which end with their owner.
    expect(Object.keys(saved?.scopes ?? {})).toEqual(['key:w/a'])
    expect(pages.snapshot('echo#0', true)).toBeUndefined()
    expect(pages.changedPartitions).toEqual([])
  })

  it('tracks no scopes where nothing is checkpointed (embedded mode)', () => {
    const { ledger, book: pages } = book(false)
    ledger.decide([rate], 1)
    pages.touched('echo#0', [rate])
    expect(pages.changedPartitions).toEqual([])
    expect(pages.snapshot('echo#0')).toEqual({ scopes: {} })
  })

  it('lets a next owner refuse what the previous one would have', () => {
    const first = book(true)
    expect(first.ledger.decide([rate], 1).allowed).toBe(true)
    first.book.touched('echo#0', [rate])
    const saved = first.book.snapshot('echo#0')
    const next = book(true)
    if (saved) next.book.restore('echo#0', saved, 10)
    expect(next.ledger.decide([rate], 1).allowed).toBe(false)
    // The restored scope belongs to the partition's next checkpoint too.
    expect(Object.keys(next.book.snapshot('echo#0')?.scopes ?? {})).toEqual(['key:w/a'])
  })
})
