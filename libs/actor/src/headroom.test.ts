import { describe, expect, it } from 'vitest'
import { Headroom } from './headroom.ts'

describe('Headroom', () => {
  it('holds nothing back without a capacity and a headroom', () => {
    const open = new Headroom(undefined, undefined)
    open.took('a')
    open.took('a')
    expect(open.holdsBack('a')).toBe(false)
    const none = new Headroom(2, 0)
    none.took('a')
    none.took('a')
    expect(none.holdsBack('a')).toBe(false)
  })

  it('keeps the last slots for lanes with nothing in flight, and wakes held lanes on release', () => {
    const room = new Headroom(3, 1)
    room.took('flood')
    expect(room.holdsBack('flood')).toBe(false)
    room.took('flood')
    // 2 of 3 in flight: the last slot is kept.
    expect(room.holdsBack('flood')).toBe(true)
    expect(room.holdsBack('quiet')).toBe(false)
    room.took('quiet')
    expect(room.gaveBack('quiet')).toEqual(['flood'])
    // Answered once: the next release has nobody to wake.
    expect(room.gaveBack('flood')).toEqual([])
    expect(room.holdsBack('flood')).toBe(false)
  })
})
