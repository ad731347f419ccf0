/** How messages to one destination are gathered into one NATS message (docs/cluster.md). */
export interface BatchSettings {
  /** A batch goes as soon as it has this many items (default 64). */
  readonly maxItems?: number
  /**
   * Longest an item waits for others: 0 (default) sends at the end of the current turn of
   * the event loop, more waits that many ms.
   */
  readonly flushDelayMs?: number
}
