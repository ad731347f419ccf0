import { describe, expect, it } from 'vitest'
import { configFromValue } from '@fairlane/config'
import {
  clientAddress,
  forwardedHops,
  ipPrefix,
  parseAddress,
  trustedProxiesOf,
  type Address,
} from './client-ip.ts'

const addr = (text: string): Address => {
  const address = parseAddress(text)
  if (!address) throw new Error(text)
  return address
}

const trusted = trustedProxiesOf(
  configFromValue({ trustedProxies: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'] }, {}, 'ip test'),
)

describe('client address', () => {
  it('is the peer when the peer is not a trusted proxy, whatever the header says', () => {
    const hops = forwardedHops('203.0.113.9, 10.0.0.1', 'x-forwarded-for')
    expect(clientAddress(addr('198.51.100.4'), hops, trusted).text).toBe('198.51.100.4')
  })

  it('is the right-most untrusted hop behind trusted proxies', () => {
    const hops = forwardedHops(['6.6.6.6, 203.0.113.9', '10.1.1.1'], 'x-forwarded-for')
    expect(clientAddress(addr('10.0.0.2'), hops, trusted).text).toBe('203.0.113.9')
    expect(clientAddress(addr('::ffff:192.0.2.7'), ['203.0.113.10'], trusted).text).toBe(
      '203.0.113.10',
    )
  })

  it('stops at a hop that is not an address, and takes the left-most when every hop is trusted', () => {
    expect(clientAddress(addr('10.0.0.2'), ['garbage'], trusted).text).toBe('10.0.0.2')
    expect(clientAddress(addr('10.0.0.2'), ['10.0.0.9', '10.0.0.8'], trusted).text).toBe('10.0.0.9')
    expect(clientAddress(addr('10.0.0.2'), [], trusted).text).toBe('10.0.0.2')
  })

  it('reads Forwarded for= values, quoted, with ports and IPv6 brackets', () => {
    const hops = forwardedHops(
      'for=198.51.100.1;proto=https, for="[2001:db8::7]:4711", For="203.0.113.3:80";by=x, for=unknown',
      'forwarded',
    )
    expect(hops).toEqual(['198.51.100.1', '2001:db8::7', '203.0.113.3', 'unknown'])
    expect(clientAddress(addr('fd00::1'), hops.slice(0, 2), trusted).text).toBe('2001:db8::7')
  })

  it('trusts nobody without trustedProxies', () => {
    const none = trustedProxiesOf(configFromValue({}, {}, 'none'))
    expect(clientAddress(addr('10.0.0.2'), ['203.0.113.9'], none).text).toBe('10.0.0.2')
  })
})

describe('ipPrefix', () => {
  it('aggregates IPv4 to /24 or keeps /32', () => {
    expect(ipPrefix(addr('203.0.113.77'), 24, 64)).toBe('203.0.113.0/24')
    expect(ipPrefix(addr('203.0.113.77'), 32, 64)).toBe('203.0.113.77/32')
    expect(ipPrefix(addr('::ffff:203.0.113.77'), 24, 64)).toBe('203.0.113.0/24')
  })

  it('aggregates IPv6 to /64 or /56, whatever the spelling', () => {
    expect(ipPrefix(addr('2001:db8:1:2:3:4:5:6'), 32, 64)).toBe('2001:db8:1:2:0:0:0:0/64')
    expect(ipPrefix(addr('2001:DB8:1:2::9'), 32, 64)).toBe('2001:db8:1:2:0:0:0:0/64')
    expect(ipPrefix(addr('2001:db8:1:2ff::9'), 32, 56)).toBe('2001:db8:1:200:0:0:0:0/56')
    expect(ipPrefix(addr('::1'), 32, 128)).toBe('0:0:0:0:0:0:0:1/128')
    expect(ipPrefix(addr('64:ff9b::192.0.2.1'), 32, 128)).toBe('64:ff9b:0:0:0:0:c000:201/128')
  })
})
