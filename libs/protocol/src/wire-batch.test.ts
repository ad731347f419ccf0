import { describe, expect, it } from 'vitest'
import {
  decodeReplyBatch,
  decodeShardBatch,
  encodeReplyBatch,
  encodeShardBatch,
  WIRE_VERSION,
} from './wire-batch.ts'
import type { ShardMessage } from './wire.ts'

const items: ShardMessage[] = [
  {
    kind: 'ticket',
    token: '7',
    ticket: { requestId: 'r1', workspace: 'w', keyId: 'k', target: 'echo', cost: 1 },
  },
  { kind: 'done', leaseId: 'l1', cost: 3, upstream: { status: 429, retryAfterMs: 1000 } },
  { kind: 'grant-state', grant: 'g1', unused: 2, open: false },
  { kind: 'grant-used', grant: 'g1', upstream: { status: 429, retryAfterMs: 1000 } },
  { kind: 'settle', used: ['s1'], unused: [] },
  { kind: 'cancel', requestId: 'r0' },
]

describe('shard and reply batches', () => {
  it('round-trip, version and reply subject included, in readable JSON', () => {
    const text = encodeShardBatch('_INBOX.abc.r', items)
    expect(JSON.parse(text)).toMatchObject({ v: WIRE_VERSION, replyTo: '_INBOX.abc.r' })
    expect(decodeShardBatch(text)).toEqual({ v: 4, replyTo: '_INBOX.abc.r', items })
    expect(decodeShardBatch(encodeShardBatch(undefined, items.slice(1)))).toEqual({
      v: 4,
      items: items.slice(1),
    })
    const replies = [
      { token: '7', reply: { progress: 'waiting' as const } },
      { token: '7', reply: { allowed: true as const, leaseId: 'l2', views: [], waitedMs: 0 } },
      { token: '8', reply: { grant: null } },
    ]
    expect(decodeReplyBatch(encodeReplyBatch(replies))).toEqual({ v: 4, items: replies })
  })

  it('refuses a version 1 message (no "v"), a version 2 one and an unknown version instead of reading it', () => {
    const v1 = JSON.stringify({
      kind: 'ticket',
      ticket: { requestId: 'r1', workspace: 'w', keyId: 'k', target: 'echo', cost: 1 },
    })
    expect(decodeShardBatch(v1)).toMatchObject({
      refused: 'version',
      detail: expect.stringContaining('1 (no "v")'),
    })
    // Version 2 lent a concurrency slot with each admission, version 3 named each lent
    // admission: grants of either read as version 4 would lend what was never decided.
    for (const v of [2, 3, 5]) {
      expect(decodeShardBatch(JSON.stringify({ v, items }))).toMatchObject({
        refused: 'version',
        detail: `wire version ${v}, this node speaks 4`,
      })
      expect(decodeReplyBatch(JSON.stringify({ v, items: [] }))).toMatchObject({
        refused: 'version',
      })
    }
    // A v1 owner's answer (a bare AdmissionReply) reaching a v4 ingress.
    expect(decodeReplyBatch(JSON.stringify({ allowed: false, code: 'queue_full' }))).toMatchObject({
      refused: 'version',
    })
  })

  it('refuses a garbled batch whole: no item of it is acted on', () => {
    for (const text of [
      'not json',
      '[1,2]',
      JSON.stringify({ v: 4 }),
      JSON.stringify({ v: 4, items: 'x' }),
      JSON.stringify({ v: 4, replyTo: 5, items: [] }),
      JSON.stringify({ v: 4, items: [items[1], { kind: 'ticket', ticket: {} }] }),
      JSON.stringify({ v: 4, items: [items[1], { kind: 'drop-table' }] }),
      // Version 3's settle named admissions; one reaching a version 4 owner is refused whole.
      JSON.stringify({
        v: 4,
        items: [{ kind: 'grant-state', grant: 'g1', unused: ['a1'], open: false }],
      }),
      // A count that is not a whole number of admissions would refund what was never lent.
      ...[-1, 2.5, 1e20].map((unused) =>
        JSON.stringify({ v: 4, items: [{ kind: 'grant-state', grant: 'g1', unused, open: true }] }),
      ),
      JSON.stringify({ v: 4, items: [{ kind: 'grant-used', cost: 2 }] }),
    ]) {
      expect(decodeShardBatch(text)).toMatchObject({ refused: 'garbled' })
    }
    const grant = { partition: 'echo#0', ttlMs: 1000, id: 'g1', admissions: 3, views: [] }
    const withGrant = (changes: Record<string, unknown>, allowed?: boolean) =>
      JSON.stringify({
        v: 4,
        items: [
          {
            token: '1',
            reply: {
              ...(allowed ? { allowed, leaseId: 'l1', views: [], waitedMs: 0 } : {}),
              grant: { ...grant, ...changes },
            },
          },
        ],
      })
    expect(decodeReplyBatch(withGrant({}))).toMatchObject({ v: 4 })
    expect(decodeReplyBatch(withGrant({}, true))).toMatchObject({ v: 4 })
    for (const text of [
      JSON.stringify({ v: 4, items: [{ token: 1, reply: { progress: 'waiting' } }] }),
      JSON.stringify({ v: 4, items: [{ token: '1', reply: {} }] }),
      // A grant whose count is not one would be handed out without end.
      withGrant({ admissions: '3' }),
      withGrant({ admissions: 2.5 }),
      withGrant({ admissions: 0 }),
      withGrant({ admissions: 2.5 }, true),
      withGrant({ id: undefined }),
      withGrant({ views: undefined }),
      withGrant({ slots: 's1' }),
    ]) {
      expect(decodeReplyBatch(text)).toMatchObject({ refused: 'garbled' })
    }
  })
})
