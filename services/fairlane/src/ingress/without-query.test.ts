import { describe, expect, it } from 'vitest'
import { withoutQuery } from './without-query.ts'

describe('withoutQuery', () => {
  it('removes every query string a message quotes, whatever the quoting', () => {
    expect(withoutQuery("'/t/echo/%ff?api_key=s3cret&x=1' is not a valid url component")).toBe(
      "'/t/echo/%ff?[query removed]' is not a valid url component",
    )
    expect(withoutQuery('bad "https://h/x?token=a" and /y?k=v')).toBe(
      'bad "https://h/x?[query removed]" and /y?[query removed]',
    )
  })

  it('leaves text without a query alone', () => {
    expect(withoutQuery('unknown or revoked key')).toBe('unknown or revoked key')
    expect(withoutQuery('is it? yes')).toBe('is it? yes')
  })
})
