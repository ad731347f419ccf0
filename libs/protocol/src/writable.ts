/** A `T` while it is filled in place: its fields assigned one by one, then handed out as `T`. */
export type Writable<T> = { -readonly [K in keyof T]: T[K] }
