/**
 * An intrusive doubly linked list: the element carries its own links, so push, shift and
 * removal from the middle (a cancelled ticket, a lane that blocks) are O(1) and allocate
 * nothing. An element is in at most one list of a given kind at a time.
 */
export interface Linked<T> {
  prev: T | null
  next: T | null
  /** The list the element is in, compared by identity only. */
  list: object | null
}

export class LinkedList<T extends Linked<T>> {
  head: T | null = null
  tail: T | null = null
  size = 0

  push(item: T): void {
    item.prev = this.tail
    item.next = null
    item.list = this
    if (this.tail) this.tail.next = item
    else this.head = item
    this.tail = item
    this.size++
  }

  remove(item: T): void {
    if (item.list !== this) return
    if (item.prev) item.prev.next = item.next
    else this.head = item.next
    if (item.next) item.next.prev = item.prev
    else this.tail = item.prev
    item.prev = item.next = null
    item.list = null
    this.size--
  }

  shift(): T | null {
    const item = this.head
    if (item) this.remove(item)
    return item
  }

  /** Moves the head to the tail: one round-robin step. */
  rotate(): void {
    const item = this.head
    if (item && item !== this.tail) {
      this.remove(item)
      this.push(item)
    }
  }
}
