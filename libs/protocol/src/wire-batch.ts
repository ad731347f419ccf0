import type { ShardMessage, TicketReply } from './wire.ts'

/** The version of the cluster's wire format: in the shard subjects and in every batch. */
export const WIRE_VERSION = 4

/**
 * One NATS message from an ingress node to a shard's owner: the tickets, `done`s and
 * `cancel`s that node had for the shard within one flush. `replyTo` is where the owner
 * sends the tickets' answers (a subject of the ingress node's inbox).
 */
export interface ShardBatch {
  readonly v: typeof WIRE_VERSION
  readonly replyTo?: string
  readonly items: readonly ShardMessage[]
}

/** An answer to one ticket, tagged with the token its ingress gave the ticket. */
export interface ReplyItem {
  readonly token: string
  readonly reply: TicketReply
}

/** One NATS message from an owner to an ingress node: the answers it had for that node. */
export interface ReplyBatch {
  readonly v: typeof WIRE_VERSION
  readonly items: readonly ReplyItem[]
}

/**
 * Why a message was not read: `version` (another version of Fairlane sent it: its `v` is
 * missing, as in version 1, or different) or `garbled` (not JSON, or not a batch).
 */
export interface WireRefusal {
  readonly refused: 'version' | 'garbled'
  readonly detail: string
}

export function encodeShardBatch(
  replyTo: string | undefined,
  items: readonly ShardMessage[],
): string {
  return JSON.stringify({
    v: WIRE_VERSION,
    ...(replyTo ? { replyTo } : {}),
    items,
  } satisfies ShardBatch)
}

export function encodeReplyBatch(items: readonly ReplyItem[]): string {
  return JSON.stringify({ v: WIRE_VERSION, items } satisfies ReplyBatch)
}

/**
 * Reads a shard batch. Nodes of a cluster are trusted, so items are checked only as far as
 * routing them needs: a message of another version or shape is refused whole, never half read.
 */
export function decodeShardBatch(text: string): ShardBatch | WireRefusal {
  const envelope = readEnvelope(text)
  if ('refused' in envelope) return envelope
  const { replyTo } = envelope.body
  if (replyTo !== undefined && typeof replyTo !== 'string')
    return garbled('replyTo is not a subject')
  for (const item of envelope.items) {
    if (!isShardMessage(item)) return garbled(`not a shard message: ${preview(item)}`)
  }
  return envelope.body as unknown as ShardBatch
}

export function decodeReplyBatch(text: string): ReplyBatch | WireRefusal {
  const envelope = readEnvelope(text)
  if ('refused' in envelope) return envelope
  for (const item of envelope.items) {
    if (!isReplyItem(item)) return garbled(`not a reply: ${preview(item)}`)
  }
  return envelope.body as unknown as ReplyBatch
}

type Envelope =
  { readonly body: Record<string, unknown>; readonly items: readonly unknown[] } | WireRefusal

function readEnvelope(text: string): Envelope {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return garbled(`not JSON: ${text.slice(0, 80)}`)
  }
  if (!isRecord(body)) return garbled(`not an object: ${preview(body)}`)
  if (body.v !== WIRE_VERSION) {
    const version = body.v === undefined ? '1 (no "v")' : JSON.stringify(body.v)
    return {
      refused: 'version',
      detail: `wire version ${version}, this node speaks ${WIRE_VERSION}`,
    }
  }
  if (!Array.isArray(body.items)) return garbled('items is not a list')
  return { body, items: body.items }
}

function isShardMessage(item: unknown): boolean {
  if (!isRecord(item)) return false
  switch (item.kind) {
    case 'ticket':
      return (
        typeof item.token === 'string' &&
        isRecord(item.ticket) &&
        (item.slots === undefined || isCount(item.slots))
      )
    case 'share':
      return (
        typeof item.token === 'string' &&
        isRecord(item.ticket) &&
        typeof item.want === 'number' &&
        (item.slots === undefined || isCount(item.slots))
      )
    case 'settle':
      return Array.isArray(item.used) && Array.isArray(item.unused)
    case 'grant-state':
      return (
        typeof item.grant === 'string' && isCount(item.unused) && typeof item.open === 'boolean'
      )
    case 'grant-used':
      return typeof item.grant === 'string'
    case 'done':
      return typeof item.leaseId === 'string'
    case 'cancel':
      return typeof item.requestId === 'string'
    default:
      return false
  }
}

function isReplyItem(item: unknown): boolean {
  if (!isRecord(item) || typeof item.token !== 'string' || !isRecord(item.reply)) return false
  const reply = item.reply
  // A grant is counted on, not only routed: a count that is not one would hand out admissions
  // without end, so one that does not hold together refuses the whole batch.
  if ('grant' in reply && reply.grant !== null && !isShareGrant(reply.grant)) return false
  return (
    typeof reply.allowed === 'boolean' ||
    typeof reply.progress === 'string' ||
    'grant' in reply ||
    typeof reply.revoke === 'string'
  )
}

function isShareGrant(grant: unknown): boolean {
  return (
    isRecord(grant) &&
    typeof grant.id === 'string' &&
    typeof grant.partition === 'string' &&
    typeof grant.ttlMs === 'number' &&
    isCount(grant.admissions) &&
    grant.admissions > 0 &&
    Array.isArray(grant.views) &&
    (grant.lastViews === undefined || Array.isArray(grant.lastViews)) &&
    (grant.slots === undefined || Array.isArray(grant.slots))
  )
}

/** A whole number of admissions, 0 or more. */
function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function garbled(detail: string): WireRefusal {
  return { refused: 'garbled', detail }
}

function preview(value: unknown): string {
  return (JSON.stringify(value) ?? String(value)).slice(0, 80)
}
