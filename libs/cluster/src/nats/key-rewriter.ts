import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node'

interface Pending {
  readonly resolve: (revision: number) => void
  readonly reject: (err: Error) => void
  readonly giveUpAt: number
}

/** What JetStream answers a publish: the stored revision, or why it was refused. */
interface PublishAck {
  readonly stream?: string
  readonly seq?: number
  readonly error?: { readonly description?: string }
}

/**
 * Compare-and-set rewrites of the keys of one KV bucket: the shard leases' renewals, a
 * third of a node's shards every third of the lease TTL, the commonest NATS write of a
 * cluster. Each is published straight to the bucket's stream, expecting the key's last
 * revision, and answered on one subscription for all. Through nats.js's KV `update`, each
 * also made a request object, its timer and deferred, and an Error with a stack that nats.js
 * builds and drops after every answer (`noAsyncTraces` does not spare that one): a one-node
 * cluster of 256 shards spent about a tenth of its idle CPU on those Errors alone.
 */
export class KeyRewriter {
  readonly #nc: NatsConnection
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #inbox = createInbox()
  readonly #pending = new Map<string, Pending>()
  readonly #subscription: Subscription
  readonly #sweeper: NodeJS.Timeout
  #next = 0
  #closed = false

  /**
   * `timeoutMs`: how long a rewrite may wait for its answer. Keep it well under a lease
   * round: a round waits for its rewrites, and the leases written last age meanwhile.
   */
  constructor(nc: NatsConnection, bucket: string, timeoutMs = 5_000) {
    this.#nc = nc
    this.#prefix = `$KV.${bucket}.`
    this.#timeoutMs = timeoutMs
    this.#subscription = nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (!err) this.#answer(msg)
      },
    })
    this.#sweeper = setInterval(() => this.#giveUp(), Math.max(10, timeoutMs / 4))
    this.#sweeper.unref()
  }

  /**
   * Writes `value` under `key` if the key's last revision is still `revision`; resolves the
   * new revision. Refused ("wrong last sequence") when someone wrote it since, or it is gone.
   */
  rewrite(key: string, value: string, revision: number): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('rewriter closed'))
    const token = String(++this.#next)
    const expected = headers()
    expected.set('Nats-Expected-Last-Subject-Sequence', String(revision))
    return new Promise((resolve, reject) => {
      this.#pending.set(token, { resolve, reject, giveUpAt: Date.now() + this.#timeoutMs })
      try {
        this.#nc.publish(this.#prefix + key, value, {
          reply: `${this.#inbox}.${token}`,
          headers: expected,
        })
      } catch (err) {
        this.#pending.delete(token)
        reject(err instanceof Error ? err : new Error(String(err)))
      }
    })
  }

  /** Stops listening; writes still waiting are refused. */
  close(): void {
    this.#closed = true
    clearInterval(this.#sweeper)
    this.#subscription.unsubscribe()
    for (const pending of this.#pending.values()) pending.reject(new Error('rewriter closed'))
    this.#pending.clear()
  }

  #answer(msg: Msg): void {
    const token = msg.subject.slice(this.#inbox.length + 1)
    const pending = this.#pending.get(token)
    if (!pending) return
    this.#pending.delete(token)
    // Nobody stores the bucket's subjects (JetStream away): NATS answers a 503 status.
    if (msg.headers?.code === 503) {
      pending.reject(new Error(`no responders for ${this.#prefix}*`))
      return
    }
    let ack: PublishAck
    try {
      ack = msg.json<PublishAck>()
    } catch {
      pending.reject(new Error(`not a publish acknowledgement: ${msg.string().slice(0, 80)}`))
      return
    }
    if (ack.error) pending.reject(new Error(ack.error.description ?? 'refused without a reason'))
    else if (typeof ack.stream !== 'string' || typeof ack.seq !== 'number')
      pending.reject(new Error(`not a publish acknowledgement: ${msg.string().slice(0, 80)}`))
    else pending.resolve(ack.seq)
  }

  #giveUp(): void {
    const now = Date.now()
    for (const [token, pending] of this.#pending) {
      if (pending.giveUpAt > now) continue
      this.#pending.delete(token)
      pending.reject(new Error(`no answer within ${this.#timeoutMs} ms`))
    }
  }
}
