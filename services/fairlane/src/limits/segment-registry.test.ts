import { describe, expect, it } from 'vitest'
import { SegmentRegistry } from './segment-registry.ts'

function registry(perWorkspace = 4, perKey = 2) {
  const clock = { now: 0 }
  return { clock, segments: new SegmentRegistry({ perWorkspace, perKey }, () => clock.now) }
}

const use = (segment: string, windowMs = 1000) => ({ segment, windowMs })

describe('SegmentRegistry', () => {
  it('bounds the ids one key holds, and lets it reuse its own', () => {
    const { segments } = registry()
    expect(segments.admit('w', 'a', [use('s1'), use('s2')])).toBeUndefined()
    expect(segments.admit('w', 'a', [use('s3')])).toBe('this key already uses 2 segment ids')
    expect(segments.admit('w', 'a', [use('s1'), use('s2'), use('s1')])).toBeUndefined()
  })

  it('bounds the workspace across its keys, and workspaces apart', () => {
    const { segments } = registry()
    expect(segments.admit('w', 'a', [use('s1'), use('s2')])).toBeUndefined()
    expect(segments.admit('w', 'b', [use('s3'), use('s4')])).toBeUndefined()
    expect(segments.admit('w', 'c', [use('s5')])).toBe('this workspace already uses 4 segment ids')
    // An id the workspace already holds costs it nothing new.
    expect(segments.admit('w', 'c', [use('s1')])).toBeUndefined()
    expect(segments.admit('other', 'a', [use('s5'), use('s6')])).toBeUndefined()
  })

  it('admits all of a request or none of it', () => {
    const { segments } = registry()
    expect(segments.admit('w', 'a', [use('s1')])).toBeUndefined()
    expect(segments.admit('w', 'a', [use('s1'), use('s2'), use('s3')])).toBeDefined()
    expect(segments.admit('w', 'a', [use('s2')])).toBeUndefined()
  })

  it('frees an id once its longest window has passed since it was last named', () => {
    const { clock, segments } = registry()
    segments.admit('w', 'a', [use('short', 1000), use('long', 60_000)])
    clock.now = 999
    expect(segments.admit('w', 'a', [use('new')])).toBeDefined()
    clock.now = 1000
    expect(segments.admit('w', 'a', [use('new', 120_000)])).toBeUndefined()
    // Named again with a shorter window, `long` still counts until its first window ends.
    segments.admit('w', 'a', [use('long', 1000)])
    clock.now = 59_999
    expect(segments.admit('w', 'a', [use('third')])).toBeDefined()
    clock.now = 60_000
    expect(segments.admit('w', 'a', [use('third')])).toBeUndefined()
  })
})
