import { mergeConfig } from 'vitest/config'
import shared from '../../vitest.shared.ts'

// The cluster tests run several node processes, NATS and Redis each, and assert rates the
// upstream sees; on a 2-core machine, files running side by side starve each other into
// timeouts. One file at a time here: the suite takes about as long and is steady.
export default mergeConfig(shared, { test: { fileParallelism: false } })
