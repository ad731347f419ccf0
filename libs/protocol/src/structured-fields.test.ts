import { describe, expect, it } from 'vitest'
import { readMembers, type Member } from './structured-fields.ts'

const params = (member: Member | undefined) => Object.fromEntries(member?.params ?? [])

describe('readMembers (RFC 8941 List and Dictionary members)', () => {
  it('reads list items of every bare item type, with parameters', () => {
    const members = readMembers(
      '"default";q=100;w=60, burst;q=1.5, 10;w=1;flag, ?1, :cHsdsRa894==:;x=?0, -3',
      64,
    )
    expect(members.map((m) => m?.value)).toEqual(['default', 'burst', 10, true, 'cHsdsRa894==', -3])
    expect(params(members[0])).toEqual({ q: 100, w: 60 })
    expect(params(members[1])).toEqual({ q: 1.5 })
    expect(params(members[2])).toEqual({ w: 1, flag: true })
    expect(params(members[4])).toEqual({ x: false })
    expect(members.every((m) => m?.key === undefined)).toBe(true)
  })

  it('reads dictionary members as key and value', () => {
    const [limit, remaining, reset] = readMembers('limit=100, remaining=50;x="y", reset=30', 64)
    expect(limit).toEqual({ key: 'limit', value: 100, params: new Map() })
    expect(remaining?.key).toBe('remaining')
    expect(params(remaining)).toEqual({ x: 'y' })
    expect(reset?.value).toBe(30)
  })

  it('keeps commas inside strings and inner lists, and unescapes strings', () => {
    const members = readMembers('"a,b";q=1, ("x,y" z);w=2, "say \\"hi\\" \\\\"', 64)
    expect(members).toHaveLength(3)
    expect(members[0]?.value).toBe('a,b')
    expect(members[1]?.value).toBeUndefined()
    expect(params(members[1])).toEqual({ w: 2 })
    expect(members[2]?.value).toBe('say "hi" \\')
  })

  it('is lenient: any case, spaces around ";", tokens that start with a digit, "_" or "."', () => {
    const [member] = readMembers(' 10 ; W=60 ; S=2024-q1 ', 64)
    expect(member?.value).toBe(10)
    expect(params(member)).toEqual({ w: 60, s: '2024-q1' })
    expect(readMembers('5;s=_x;t=.y;u=1e5', 64).map(params)).toEqual([
      { s: '_x', t: '.y', u: '1e5' },
    ])
  })

  it('keeps the first of a repeated parameter and names the repeat', () => {
    const [member] = readMembers('10;w=60;u=cost;w=30', 64)
    expect(params(member)).toEqual({ w: 60, u: 'cost' })
    expect(member?.repeatedParam).toBe('w')
    expect(readMembers('10;w=60', 64)[0]?.repeatedParam).toBeUndefined()
  })

  it.each([
    ['empty', ''],
    ['an unterminated string', '"abc;q=1'],
    ['a bad escape', '"a\\nb"'],
    ['a bad boolean', '?2'],
    ['an unterminated byte sequence', ':abc'],
    ['an unterminated inner list', '(a b;q=1'],
    ['a parameter without a name', '10;=5'],
    ['an empty parameter value', '10;w='],
    ['two parameters in one', '10;;w=1'],
    ['junk after the item', '"c" junk'],
    ['a dictionary key without a value', 'limit='],
    ['a character outside the grammar', '10;s=ü'],
    ['a sign on its own', '-'],
  ])('gives undefined for a member with %s, and keeps the others', (_name, bad) => {
    // Last: an unterminated string or inner list runs to the end of the field.
    const members = readMembers(`"a";q=1, "b";q=2, ${bad}`, 64)
    expect(members).toHaveLength(3)
    expect(members.map((m) => m?.value)).toEqual(['a', 'b', undefined])
    expect(members[2]).toBeUndefined()
  })

  it('gives undefined for every member after an unterminated string, never a wrong split', () => {
    expect(readMembers('"a, b;q=1, "c"', 64)).toEqual([undefined])
  })

  it('reads at most max members, so a huge field costs no more', () => {
    const members = readMembers(Array.from({ length: 10_000 }, (_, i) => `${i};q=1`).join(','), 3)
    expect(members.map((m) => m?.value)).toEqual([0, 1, 2])
    expect(readMembers('1, 2', 3)).toHaveLength(2)
  })
})
