import { describe, expect, it } from 'vitest'
import { FairlaneError } from '@fairlane/protocol'
import {
  DestinationPolicy,
  type DestinationRule,
  type PinnedDestination,
  type ResolvedAddress,
  type SelfAddresses,
} from './destination-policy.ts'

const PUBLIC_V4 = '93.184.215.14'

/** Fields of the pinned destination to compare; `href` is the checked URL. */
type Pin = Partial<Omit<PinnedDestination, 'url'>> & { readonly href?: string }

type Expected =
  | { readonly allowed: string; readonly pin?: Pin }
  | { readonly code: 'destination_blocked' | 'bad_request'; readonly message: string }

interface Row {
  readonly name: string
  readonly url: string
  readonly rule?: Partial<DestinationRule>
  /** Resolver stub entries; any other name resolves to PUBLIC_V4, and `nx.*` names fail. */
  readonly dns?: Readonly<Record<string, readonly string[]>>
  readonly self?: SelfAddresses
  readonly expect: Expected
}

const allowed = (address: string, pin?: Pin): Expected => ({
  allowed: address,
  ...(pin ? { pin } : {}),
})
const blocked = (message: string): Expected => ({ code: 'destination_blocked', message })
const invalid = (message: string): Expected => ({ code: 'bad_request', message })

const open = { allowPrivateAddresses: true }
const http = { allowHttp: true }
const loopSelf: SelfAddresses = { addresses: ['0.0.0.0'], ports: [8080] }

// One case per line, so the table reads as a table.
// prettier-ignore
const rows: readonly Row[] = [
  // Schemes
  { name: 'https to a public name', url: 'https://api.example.com/v1', expect: allowed(PUBLIC_V4, { port: 443, family: 4 }) },
  { name: 'http without allowHttp', url: 'http://api.example.com/', expect: blocked('http is not allowed') },
  { name: 'http with allowHttp', url: 'http://api.example.com/', rule: http, expect: allowed(PUBLIC_V4, { port: 80 }) },
  { name: 'ftp', url: 'ftp://api.example.com/file', rule: http, expect: blocked('scheme ftp: is not allowed') },
  { name: 'file', url: 'file:///etc/passwd', rule: http, expect: blocked('scheme file: is not allowed') },
  { name: 'gopher', url: 'gopher://127.0.0.1:6379/_INFO', rule: http, expect: blocked('scheme gopher:') },
  { name: 'javascript', url: 'javascript:alert(1)', rule: http, expect: blocked('scheme javascript:') },
  { name: 'data', url: 'data:text/plain,hi', rule: http, expect: blocked('scheme data:') },
  { name: 'ws', url: 'ws://api.example.com/', rule: http, expect: blocked('scheme ws:') },
  { name: 'not a URL', url: 'api.example.com/v1', expect: invalid('not a valid absolute URL') },
  { name: 'empty host', url: 'https:///', expect: invalid('not a valid absolute URL') },
  { name: 'space in host', url: 'https://api example.com/', expect: invalid('not a valid absolute URL') },

  // Ports
  { name: 'explicit default port', url: 'https://api.example.com:443/', rule: { allowedPorts: [443] }, expect: allowed(PUBLIC_V4, { port: 443, hostHeader: 'api.example.com' }) },
  { name: 'port not allowed', url: 'https://api.example.com:8443/', rule: { allowedPorts: [443] }, expect: blocked('port 8443 is not allowed') },
  { name: 'allowed extra port', url: 'https://api.example.com:8443/', rule: { allowedPorts: [443, 8443] }, expect: allowed(PUBLIC_V4, { port: 8443, hostHeader: 'api.example.com:8443' }) },
  { name: 'implicit http port 80 not listed', url: 'http://api.example.com/', rule: { ...http, allowedPorts: [443] }, expect: blocked('port 80 is not allowed') },
  { name: 'explicit :80 listed', url: 'http://api.example.com:80/', rule: { ...http, allowedPorts: [80] }, expect: allowed(PUBLIC_V4, { port: 80, hostHeader: 'api.example.com' }) },
  { name: 'any port when none listed', url: 'https://api.example.com:9999/', expect: allowed(PUBLIC_V4, { port: 9999 }) },
  { name: 'port 0', url: 'https://api.example.com:0/', expect: blocked('port 0 is not allowed') },

  // Userinfo
  { name: 'user@', url: 'https://user@api.example.com/', expect: blocked('credentials in the URL') },
  { name: 'user:pass@', url: 'https://user:pass@api.example.com/', expect: blocked('credentials in the URL') },
  { name: 'encoded @ in userinfo', url: 'https://api.example.com%40evil.test@api.example.com/', expect: blocked('credentials in the URL') },
  { name: 'empty userinfo @', url: 'https://@api.example.com/', expect: blocked('credentials in the URL') },
  { name: 'empty user:pass', url: 'https://:@api.example.com/', expect: blocked('credentials in the URL') },
  { name: 'encoded @ in host', url: 'https://api.example.com%40evil.test/', expect: invalid('not a valid absolute URL') },
  { name: 'backslash ends the authority', url: 'https://api.example.com\\@evil.test/', dns: { 'evil.test': ['10.0.0.1'] }, expect: allowed(PUBLIC_V4, { hostname: 'api.example.com' }) },

  // IPv4 literals
  { name: '10/8', url: 'https://10.0.0.5/', expect: blocked('address 10.0.0.5 is private') },
  { name: '172.16/12 low', url: 'https://172.16.0.1/', expect: blocked('is private') },
  { name: '172.16/12 high', url: 'https://172.31.255.255/', expect: blocked('is private') },
  { name: 'just above 172.16/12', url: 'https://172.32.0.1/', expect: allowed('172.32.0.1') },
  { name: '192.168/16', url: 'https://192.168.1.1/', expect: blocked('is private') },
  { name: 'loopback 127.0.0.1', url: 'https://127.0.0.1/', expect: blocked('address 127.0.0.1 is loopback') },
  { name: 'loopback 127/8', url: 'https://127.255.255.254/', expect: blocked('is loopback') },
  { name: 'link-local', url: 'https://169.254.1.1/', expect: blocked('is link-local') },
  { name: 'metadata', url: 'http://169.254.169.254/latest/meta-data/', rule: http, expect: blocked('169.254.169.254 is a cloud metadata address') },
  { name: 'ECS credentials endpoint', url: 'http://169.254.170.2/v2/credentials', rule: http, expect: blocked('metadata') },
  { name: 'CGNAT low', url: 'https://100.64.0.1/', expect: blocked('carrier-grade NAT') },
  { name: 'CGNAT high', url: 'https://100.127.255.255/', expect: blocked('carrier-grade NAT') },
  { name: 'just above CGNAT', url: 'https://100.128.0.1/', expect: allowed('100.128.0.1') },
  { name: 'multicast', url: 'https://224.0.0.1/', expect: blocked('is multicast') },
  { name: 'SSDP multicast', url: 'https://239.255.255.250/', expect: blocked('is multicast') },
  { name: 'broadcast', url: 'https://255.255.255.255/', expect: blocked('is broadcast') },
  { name: '0.0.0.0', url: 'https://0.0.0.0/', expect: blocked('is unspecified') },
  { name: '0/8', url: 'https://0.1.2.3/', expect: blocked('is unspecified') },
  { name: 'class E', url: 'https://240.0.0.1/', expect: blocked('is reserved') },
  { name: 'documentation', url: 'https://192.0.2.1/', expect: blocked('is reserved') },
  { name: 'public IPv4', url: 'https://8.8.8.8/', rule: { hostPatterns: ['*'] }, expect: allowed('8.8.8.8', { hostname: '8.8.8.8', hostHeader: '8.8.8.8', family: 4 }) },

  // IPv6 literals
  { name: '::1', url: 'https://[::1]/', expect: blocked('address ::1 is loopback') },
  { name: '::', url: 'https://[::]/', expect: blocked('is unspecified') },
  { name: 'mapped loopback', url: 'https://[::ffff:127.0.0.1]/', expect: blocked('mapped to 127.0.0.1, which is loopback') },
  { name: 'mapped loopback, hex form', url: 'https://[::ffff:7f00:1]/', expect: blocked('mapped to 127.0.0.1, which is loopback') },
  { name: 'mapped metadata', url: 'https://[::ffff:169.254.169.254]/', expect: blocked('mapped to 169.254.169.254, which is a cloud metadata address') },
  { name: 'mapped private', url: 'https://[::ffff:10.0.0.1]/', expect: blocked('mapped to 10.0.0.1, which is private') },
  { name: 'mapped public', url: 'https://[::ffff:8.8.8.8]/', expect: allowed('8.8.8.8', { family: 4, hostHeader: '[::ffff:808:808]' }) },
  { name: 'NAT64 private', url: 'https://[64:ff9b::a00:1]/', expect: blocked('mapped to 10.0.0.1, which is private') },
  { name: 'NAT64 private, dotted', url: 'https://[64:ff9b::10.0.0.1]/', expect: blocked('mapped to 10.0.0.1') },
  { name: 'NAT64 public', url: 'https://[64:ff9b::808:808]/', expect: allowed('64:ff9b::808:808', { family: 6 }) },
  { name: 'NAT64 local-use prefix', url: 'https://[64:ff9b:1::a00:1]/', expect: blocked('local-use NAT64') },
  { name: 'SIIT (RFC 6145) loopback', url: 'https://[::ffff:0:7f00:1]/', expect: blocked('mapped to 127.0.0.1, which is loopback') },
  { name: 'IPv4-compatible loopback', url: 'https://[::127.0.0.1]/', expect: blocked('outside global unicast') },
  { name: 'ULA fc00::', url: 'https://[fc00::1]/', expect: blocked('unique-local') },
  { name: 'ULA fd00::', url: 'https://[fd00::1]/', expect: blocked('unique-local') },
  { name: 'AWS IPv6 metadata', url: 'https://[fd00:ec2::254]/', expect: blocked('cloud metadata') },
  { name: 'link-local fe80::', url: 'https://[fe80::1]/', expect: blocked('is link-local') },
  { name: 'deprecated site-local', url: 'https://[fec0::1]/', expect: blocked('deprecatedSiteLocal') },
  { name: 'multicast ff02::1', url: 'https://[ff02::1]/', expect: blocked('is multicast') },
  { name: '6to4 of loopback', url: 'https://[2002:7f00:1::1]/', expect: blocked('6to4') },
  { name: '6to4 of public', url: 'https://[2002:808:808::1]/', expect: blocked('6to4') },
  { name: 'Teredo', url: 'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', expect: blocked('Teredo') },
  { name: 'documentation 2001:db8::', url: 'https://[2001:db8::1]/', expect: blocked('reserved') },
  { name: 'public IPv6', url: 'https://[2606:4700::1111]/', expect: allowed('2606:4700::1111', { family: 6, hostname: '2606:4700::1111', hostHeader: '[2606:4700::1111]' }) },
  { name: 'public IPv6 with port', url: 'https://[2606:4700::1111]:8443/', expect: allowed('2606:4700::1111', { hostHeader: '[2606:4700::1111]:8443', port: 8443 }) },

  // IPv4 spellings WHATWG URL would rewrite to a dotted quad
  { name: 'decimal loopback', url: 'http://2130706433/', rule: http, expect: blocked('unusual spelling of IPv4 address 127.0.0.1') },
  { name: 'decimal public', url: 'http://134744072/', rule: http, expect: blocked('unusual spelling of IPv4 address 8.8.8.8') },
  { name: 'octal', url: 'http://0177.0.0.1/', rule: http, expect: blocked('unusual spelling') },
  { name: 'octal public', url: 'https://010.8.8.8/', expect: blocked('unusual spelling of IPv4 address 8.8.8.8') },
  { name: 'hex dotted', url: 'http://0x7f.0.0.1/', rule: http, expect: blocked('unusual spelling') },
  { name: 'hex long', url: 'http://0x7f000001/', rule: http, expect: blocked('unusual spelling') },
  { name: 'hex public', url: 'https://0x08.0x08.0x08.0x08/', expect: blocked('unusual spelling') },
  { name: 'short form', url: 'http://127.1/', rule: http, expect: blocked('unusual spelling') },
  { name: 'three-part form', url: 'https://8.8.2056/', expect: blocked('unusual spelling of IPv4 address 8.8.8.8') },
  { name: 'percent-encoded digits', url: 'https://%38.8.8.8/', expect: blocked('unusual spelling') },
  { name: 'full-width digits', url: 'https://８.８.８.８/', expect: blocked('unusual spelling') },
  { name: 'trailing dot on IPv4', url: 'https://8.8.8.8./', expect: blocked('unusual spelling') },
  { name: 'odd spelling behind http:\\\\', url: 'http:\\\\0x7f.1/', rule: http, expect: blocked('unusual spelling') },
  { name: 'odd spelling with tab inside', url: 'https://0x7f\t.1/', expect: blocked('unusual spelling') },

  // Host names and patterns
  { name: 'mixed case against exact pattern', url: 'https://API.Example.COM/', rule: { hostPatterns: ['api.example.com'] }, expect: allowed(PUBLIC_V4, { hostname: 'api.example.com', hostHeader: 'api.example.com' }) },
  { name: 'trailing dot stripped', url: 'https://api.example.com./x', rule: { hostPatterns: ['api.example.com'] }, expect: allowed(PUBLIC_V4, { hostname: 'api.example.com', hostHeader: 'api.example.com', href: 'https://api.example.com/x' }) },
  { name: 'pattern normalized like hosts', url: 'https://sub.example.com/', rule: { hostPatterns: ['*.Example.COM.'] }, expect: allowed(PUBLIC_V4) },
  { name: 'wildcard, two levels down', url: 'https://a.b.example.com/', rule: { hostPatterns: ['*.example.com'] }, expect: allowed(PUBLIC_V4, { hostname: 'a.b.example.com' }) },
  { name: 'wildcard excludes the apex', url: 'https://example.com/', rule: { hostPatterns: ['*.example.com'] }, expect: blocked('host example.com is not approved') },
  { name: 'wildcard needs a dot boundary', url: 'https://badexample.com/', rule: { hostPatterns: ['*.example.com'] }, expect: blocked('host badexample.com is not approved') },
  { name: 'wildcard is a suffix, not a prefix', url: 'https://example.com.evil.test/', rule: { hostPatterns: ['*.example.com'] }, expect: blocked('not approved') },
  { name: 'exact pattern, other host', url: 'https://other.example.com/', rule: { hostPatterns: ['api.example.com'] }, expect: blocked('host other.example.com is not approved') },
  { name: 'empty pattern list', url: 'https://api.example.com/', rule: { hostPatterns: [] }, expect: blocked('not approved') },
  { name: 'IDN host against wildcard', url: 'https://bücher.example.com/', rule: { hostPatterns: ['*.example.com'] }, expect: allowed(PUBLIC_V4, { hostname: 'xn--bcher-kva.example.com' }) },
  { name: 'IDN pattern, punycode host', url: 'https://xn--bcher-kva.example.com/', rule: { hostPatterns: ['Bücher.example.com'] }, expect: allowed(PUBLIC_V4) },
  { name: 'punycode pattern, IDN host', url: 'https://BÜCHER.example.com/', rule: { hostPatterns: ['xn--bcher-kva.example.com'] }, expect: allowed(PUBLIC_V4, { hostHeader: 'xn--bcher-kva.example.com' }) },
  { name: 'IDN lookalike does not match', url: 'https://exаmple.com/', rule: { hostPatterns: ['example.com'] }, expect: blocked('host xn--exmple-4nf.com is not approved') },
  { name: '* matches a public IP literal', url: 'https://1.1.1.1/', rule: { hostPatterns: ['*'] }, expect: allowed('1.1.1.1') },
  { name: '* still refuses a private literal', url: 'https://10.0.0.1/', rule: { hostPatterns: ['*'] }, expect: blocked('is private') },
  { name: '* still refuses a private name', url: 'https://db.corp.test/', rule: { hostPatterns: ['*'] }, dns: { 'db.corp.test': ['192.168.0.10'] }, expect: blocked('address 192.168.0.10 of db.corp.test is private') },
  { name: 'exact IPv4 pattern', url: 'https://8.8.4.4/', rule: { hostPatterns: ['8.8.4.4'] }, expect: allowed('8.8.4.4') },
  { name: 'exact IPv6 pattern', url: 'https://[2606:4700:0:0::1111]/', rule: { hostPatterns: ['[2606:4700::1111]'] }, expect: allowed('2606:4700::1111') },
  { name: 'wildcard never matches an IP literal', url: 'https://8.8.8.8/', rule: { hostPatterns: ['*.8.8.8'] }, expect: blocked('not approved') },
  { name: 'empty label', url: 'https://a..example.com/', expect: blocked('empty label') },

  // DNS
  { name: 'name resolving to private', url: 'https://internal.example.com/', dns: { 'internal.example.com': ['10.0.0.5'] }, expect: blocked('address 10.0.0.5 of internal.example.com is private') },
  { name: 'rebinding: public then private', url: 'https://mixed.example.com/', dns: { 'mixed.example.com': [PUBLIC_V4, '127.0.0.1'] }, expect: blocked('address 127.0.0.1 of mixed.example.com is loopback') },
  { name: 'rebinding: private then public', url: 'https://mixed.example.com/', dns: { 'mixed.example.com': ['169.254.169.254', PUBLIC_V4] }, expect: blocked('cloud metadata') },
  { name: 'no records', url: 'https://empty.example.com/', dns: { 'empty.example.com': [] }, expect: blocked('host empty.example.com does not resolve') },
  { name: 'NXDOMAIN', url: 'https://nx.example.com/', expect: blocked('host nx.example.com does not resolve') },
  { name: 'localhost resolves to loopback', url: 'https://localhost/', dns: { localhost: ['127.0.0.1', '::1'] }, expect: blocked('address 127.0.0.1 of localhost is loopback') },
  { name: 'LOCALHOST. is localhost', url: 'https://LOCALHOST./', dns: { localhost: ['::1'] }, expect: blocked('address ::1 of localhost is loopback') },
  { name: 'first of several public records is pinned', url: 'https://two.example.com/', dns: { 'two.example.com': ['2606:4700::1111', PUBLIC_V4] }, expect: allowed('2606:4700::1111', { family: 6 }) },
  { name: 'record with mapped metadata', url: 'https://m.example.com/', dns: { 'm.example.com': ['::ffff:169.254.169.254'] }, expect: blocked('which is a cloud metadata address') },
  { name: 'record with mapped public is pinned as IPv4', url: 'https://m.example.com/', dns: { 'm.example.com': ['::ffff:8.8.8.8'] }, expect: allowed('8.8.8.8', { family: 4 }) },
  { name: 'record with NAT64 of loopback', url: 'https://n.example.com/', dns: { 'n.example.com': ['64:ff9b::7f00:1'] }, expect: blocked('mapped to 127.0.0.1') },
  { name: 'record that is not an address', url: 'https://odd.example.com/', dns: { 'odd.example.com': ['not-an-ip'] }, expect: blocked('invalid address') },
  { name: 'record with a zone id', url: 'https://z.example.com/', rule: open, dns: { 'z.example.com': ['fe80::1%eth0'] }, expect: blocked('scoped to an interface') },

  // Operator override (inbound mode)
  { name: 'override: 10/8', url: 'https://10.0.0.5/', rule: open, expect: allowed('10.0.0.5') },
  { name: 'override: loopback', url: 'https://127.0.0.1/', rule: open, expect: allowed('127.0.0.1') },
  { name: 'override: localhost', url: 'https://localhost:3000/', rule: open, dns: { localhost: ['127.0.0.1', '::1'] }, expect: allowed('127.0.0.1', { hostHeader: 'localhost:3000' }) },
  { name: 'override: ::1', url: 'https://[::1]/', rule: open, expect: allowed('::1', { family: 6 }) },
  { name: 'override: ULA', url: 'https://[fd12:3456::1]/', rule: open, expect: allowed('fd12:3456::1') },
  { name: 'override: IPv6 link-local', url: 'https://[fe80::1]/', rule: open, expect: allowed('fe80::1') },
  { name: 'override: IPv4 link-local', url: 'https://169.254.10.10/', rule: open, expect: allowed('169.254.10.10') },
  { name: 'override: CGNAT', url: 'https://100.64.0.1/', rule: open, expect: allowed('100.64.0.1') },
  { name: 'override: mapped private', url: 'https://[::ffff:10.0.0.1]/', rule: open, expect: allowed('10.0.0.1', { family: 4 }) },
  { name: 'override: private name', url: 'https://internal.example.com/', rule: open, dns: { 'internal.example.com': ['10.0.0.5'] }, expect: allowed('10.0.0.5') },
  { name: 'override keeps metadata blocked', url: 'https://169.254.169.254/', rule: open, expect: blocked('cloud metadata') },
  { name: 'override keeps mapped metadata blocked', url: 'https://[::ffff:169.254.169.254]/', rule: open, expect: blocked('cloud metadata') },
  { name: 'override keeps mapped metadata (hex) blocked', url: 'https://[::ffff:a9fe:a9fe]/', rule: open, expect: blocked('cloud metadata') },
  { name: 'override keeps NAT64 metadata blocked', url: 'https://[64:ff9b::a9fe:a9fe]/', rule: open, expect: blocked('cloud metadata') },
  { name: 'override keeps SIIT metadata blocked', url: 'https://[::ffff:0:a9fe:a9fe]/', rule: open, expect: blocked('cloud metadata') },
  { name: 'override keeps IPv6 metadata blocked', url: 'https://[fd00:ec2::254]/', rule: open, expect: blocked('cloud metadata') },
  { name: 'override keeps metadata by name blocked', url: 'https://metadata.google.internal/', rule: open, dns: { 'metadata.google.internal': ['169.254.169.254'] }, expect: blocked('of metadata.google.internal is a cloud metadata address') },
  { name: 'override keeps decimal metadata blocked', url: 'http://2852039166/', rule: { ...open, ...http }, expect: blocked('unusual spelling of IPv4 address 169.254.169.254') },
  { name: 'override keeps 0.0.0.0 blocked', url: 'https://0.0.0.0/', rule: open, expect: blocked('unspecified') },
  { name: 'override keeps :: blocked', url: 'https://[::]/', rule: open, expect: blocked('unspecified') },
  { name: 'override keeps multicast blocked', url: 'https://224.0.0.251/', rule: open, expect: blocked('multicast') },
  { name: 'override keeps IPv6 multicast blocked', url: 'https://[ff02::1]/', rule: open, expect: blocked('multicast') },
  { name: 'override keeps broadcast blocked', url: 'https://255.255.255.255/', rule: open, expect: blocked('broadcast') },
  { name: 'override keeps 6to4 blocked', url: 'https://[2002:a00:1::1]/', rule: open, expect: blocked('6to4') },

  // This node's own listeners
  { name: 'self: wildcard listener via 127.0.0.1', url: 'http://127.0.0.1:8080/', rule: { ...open, ...http }, self: loopSelf, expect: blocked('127.0.0.1 port 8080 is this Fairlane node') },
  { name: 'self: other port is fine', url: 'http://127.0.0.1:8089/', rule: { ...open, ...http }, self: loopSelf, expect: allowed('127.0.0.1', { port: 8089, hostHeader: '127.0.0.1:8089' }) },
  { name: 'self: wildcard listener via 127.0.0.2', url: 'http://127.0.0.2:8080/', rule: { ...open, ...http }, self: loopSelf, expect: blocked('request loop') },
  { name: 'self: wildcard listener via ::1', url: 'http://[::1]:8080/', rule: { ...open, ...http }, self: loopSelf, expect: blocked('request loop') },
  { name: 'self: wildcard listener via mapped loopback', url: 'http://[::ffff:127.0.0.1]:8080/', rule: { ...open, ...http }, self: { addresses: ['::'], ports: [8080] }, expect: blocked('request loop') },
  { name: 'self: via localhost', url: 'http://localhost:8080/', rule: { ...open, ...http }, dns: { localhost: ['::1', '127.0.0.1'] }, self: loopSelf, expect: blocked('::1 of localhost port 8080 is this Fairlane node') },
  { name: 'self: interface address', url: 'http://10.1.2.3:8080/', rule: { ...open, ...http }, self: { addresses: ['0.0.0.0', '10.1.2.3'], ports: [8080] }, expect: blocked('request loop') },
  { name: 'self: neighbour address is fine', url: 'http://10.1.2.4:8080/', rule: { ...open, ...http }, self: { addresses: ['0.0.0.0', '10.1.2.3'], ports: [8080] }, expect: allowed('10.1.2.4') },
  { name: 'self: listed in mapped form', url: 'http://10.1.2.3:8080/', rule: { ...open, ...http }, self: { addresses: ['::ffff:10.1.2.3'], ports: [8080] }, expect: blocked('request loop') },
  { name: 'self: listed in long IPv6 form', url: 'http://[fd00::5]:8080/', rule: { ...open, ...http }, self: { addresses: ['fd00:0:0:0:0:0:0:5'], ports: [8080] }, expect: blocked('request loop') },
  { name: 'self: public address by name', url: 'https://me.example.com/', dns: { 'me.example.com': [PUBLIC_V4] }, self: { addresses: [PUBLIC_V4], ports: [443] }, expect: blocked(`${PUBLIC_V4} of me.example.com port 443 is this Fairlane node`) },
]

/** Records every lookup, so tests can assert one resolution per name and none for literals. */
function stubResolver(entries: Readonly<Record<string, readonly string[]>> = {}) {
  const calls: string[] = []
  const resolve = async (hostname: string): Promise<readonly ResolvedAddress[]> => {
    calls.push(hostname)
    const entry = entries[hostname]
    if (entry) return entry.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
    if (hostname.startsWith('nx.')) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    }
    return [{ address: PUBLIC_V4, family: 4 }]
  }
  return { calls, resolve }
}

const baseRule: DestinationRule = { allowHttp: false, allowPrivateAddresses: false }
const defaultSelf: SelfAddresses = { addresses: ['0.0.0.0'], ports: [8080] }

async function outcome(row: Pick<Row, 'url' | 'rule' | 'dns' | 'self'>) {
  const resolver = stubResolver(row.dns)
  const policy = new DestinationPolicy({
    resolve: resolver.resolve,
    self: () => row.self ?? defaultSelf,
  })
  try {
    const pinned = await policy.check(row.url, { ...baseRule, ...row.rule })
    return { pinned, calls: resolver.calls }
  } catch (err) {
    return { err, calls: resolver.calls }
  }
}

describe('DestinationPolicy.check', () => {
  it('has a case table of real size', () => {
    expect(rows.length).toBeGreaterThanOrEqual(70)
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length)
  })

  it.each(rows)('$name: $url', async (row) => {
    const { pinned, err, calls } = await outcome(row)
    const literal = /^[a-z]+:\/*(\[|\d+\.\d+\.\d+\.\d+[/:])/i.test(row.url)
    if (literal) expect(calls).toEqual([])
    expect(calls.length).toBeLessThanOrEqual(1)

    if ('allowed' in row.expect) {
      if (err) throw err
      expect(pinned?.address).toBe(row.expect.allowed)
      const { href, ...fields } = row.expect.pin ?? {}
      expect(pinned).toMatchObject(fields)
      if (href !== undefined) expect(pinned?.url.href).toBe(href)
    } else {
      expect(pinned).toBeUndefined()
      expect(err).toBeInstanceOf(FairlaneError)
      const error = err as FairlaneError
      expect({ code: error.code, stage: error.stage }).toEqual({
        code: row.expect.code,
        stage: 'resolve',
      })
      expect(error.message).toContain(row.expect.message)
    }
  })

  it('resolves a name exactly once and pins what it checked', async () => {
    const { pinned, calls } = await outcome({ url: 'https://api.example.com/' })
    expect(calls).toEqual(['api.example.com'])
    expect(pinned).toMatchObject({
      address: PUBLIC_V4,
      family: 4,
      port: 443,
      hostname: 'api.example.com',
    })
  })

  it('reports a resolver failure other than "no such name" as upstream_unavailable', async () => {
    const policy = new DestinationPolicy({
      resolve: () =>
        Promise.reject(Object.assign(new Error('queryA ETIMEOUT'), { code: 'ETIMEOUT' })),
      self: () => defaultSelf,
    })
    await expect(policy.check('https://api.example.com/', baseRule)).rejects.toMatchObject({
      code: 'upstream_unavailable',
      stage: 'resolve',
    })
  })

  it('reads self() on every check, so listeners bound later count', async () => {
    let self: SelfAddresses = { addresses: [], ports: [] }
    const policy = new DestinationPolicy({ resolve: stubResolver().resolve, self: () => self })
    const rule = { ...baseRule, allowHttp: true, allowPrivateAddresses: true }
    await expect(policy.check('http://127.0.0.1:9000/', rule)).resolves.toMatchObject({
      port: 9000,
    })
    self = { addresses: ['127.0.0.1'], ports: [9000] }
    await expect(policy.check('http://127.0.0.1:9000/', rule)).rejects.toMatchObject({
      code: 'destination_blocked',
    })
  })
})

describe('DestinationPolicy.approve', () => {
  it('holds a URL to scheme, credentials, port and host patterns without looking it up', () => {
    const policy = new DestinationPolicy({
      resolve: () => Promise.reject(new Error('approve must not resolve')),
      self: () => defaultSelf,
    })
    const rule = { ...baseRule, hostPatterns: ['api.example.com'], allowedPorts: [443] }
    expect(policy.approve('https://api.example.com/v1', rule)).toMatchObject({
      hostname: 'api.example.com',
      port: 443,
    })
    for (const [url, message] of [
      ['https://other.example.com/', 'is not approved'],
      ['http://api.example.com/', 'http is not allowed'],
      ['https://u:p@api.example.com/', 'credentials'],
      ['https://api.example.com:8443/', 'port 8443'],
    ] as const) {
      expect(() => policy.approve(url, rule)).toThrow(message)
    }
  })
})

describe('DestinationPolicy property: special-purpose IPv4 space is always refused', () => {
  const ranges: ReadonlyArray<readonly [string, number]> = [
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['100.64.0.0', 10],
    ['0.0.0.0', 8],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ]

  // Deterministic, so a failure names a reproducible address.
  let seed = 20240601
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32

  function sample([base, prefix]: readonly [string, number]): string {
    const start = base.split('.').reduce((n, octet) => n * 256 + Number(octet), 0)
    const value = start + Math.floor(random() * 2 ** (32 - prefix))
    return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.')
  }

  const spellings = (a: string, hex: string): readonly Row['url'][] => [
    `https://${a}/`,
    `https://[::ffff:${a}]/`,
    `https://[64:ff9b::${hex}]/`,
    'https://generated.example.com/',
  ]

  it('refuses 900 random addresses from private and special ranges, in every form', async () => {
    for (const range of ranges) {
      for (let i = 0; i < 100; i++) {
        const address = sample(range)
        const octets = address.split('.').map(Number) as [number, number, number, number]
        const hex = `${((octets[0] << 8) | octets[1]).toString(16)}:${((octets[2] << 8) | octets[3]).toString(16)}`
        for (const url of spellings(address, hex)) {
          const { err } = await outcome({
            url,
            dns: { 'generated.example.com': [PUBLIC_V4, address] },
          })
          expect(err, `${url} (${address})`).toBeInstanceOf(FairlaneError)
          expect((err as FairlaneError).code).toBe('destination_blocked')
        }
      }
    }
  })

  it('with the operator override, still refuses metadata, multicast and unspecified space', async () => {
    const always: ReadonlyArray<readonly [string, number]> = [
      ['169.254.169.254', 32],
      ['0.0.0.0', 8],
      ['224.0.0.0', 4],
    ]
    for (const range of always) {
      for (let i = 0; i < 50; i++) {
        const address = sample(range)
        const { err } = await outcome({
          url: `https://[::ffff:${address}]/`,
          rule: { allowPrivateAddresses: true },
        })
        expect((err as FairlaneError | undefined)?.code, address).toBe('destination_blocked')
      }
    }
  })
})
