import { describe, expect, it } from 'vitest'
import { Headroom, IDLE_LANES_KEPT } from './headroom.ts'

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

  it('keeps a count for lanes in flight and a bounded number of idle ones', () => {
    const room = new Headroom(4, 1)
    // A quiet lane comes and goes: its entry stays, so its next request makes no new one.
    for (let i = 0; i < 3; i++) {
      room.took('quiet')
      room.gaveBack('quiet')
    }
    expect(room.lanesKept).toBe(1)
    room.took('busy')
    for (let i = 0; i < IDLE_LANES_KEPT + 10; i++) {
      room.took(`caller-${i}`)
      room.gaveBack(`caller-${i}`)
    }
    // Past the bound the idle ones go; a lane with a request in flight keeps its count.
    expect(room.lanesKept).toBeLessThanOrEqual(IDLE_LANES_KEPT + 1)
    room.took('busy')
    room.took('other')
    expect(room.holdsBack('busy')).toBe(true)
    expect(room.holdsBack('quiet')).toBe(false)
  })
})
