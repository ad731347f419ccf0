/**
 * An intrusive circular doubly linked list, known by its head: the element carries its own
 * links, so adding at the tail and removing from anywhere are O(1) and allocate nothing, and
 * a round-robin step is one pointer move (`head = head.next`) that writes to no element.
 * An element is in a ring of a given kind exactly when its links are set.
 */
export interface Ringed<T> {
  prev: T | null
  next: T | null
}

/** Adds `item` at the tail of the ring that starts at `head`; returns the ring's head. */
export function ringPush<T extends Ringed<T>>(head: T | null, item: T): T {
  if (!head) {
    item.prev = item.next = item
    return item
  }
  const tail = head.prev as T
  item.prev = tail
  item.next = head
  tail.next = item
  head.prev = item
  return head
}

/** Takes `item` out of the ring that starts at `head`; returns the ring's head, null once empty. */
export function ringRemove<T extends Ringed<T>>(head: T, item: T): T | null {
  const next = item.next as T
  const prev = item.prev as T
  item.prev = item.next = null
  if (next === item) return null
  prev.next = next
  next.prev = prev
  return item === head ? next : head
}
