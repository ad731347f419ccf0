import { defineConfig, mergeConfig } from 'vitest/config'
import shared from '../../vitest.shared.ts'

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      // The jobs API (issue 15) is not on this branch yet: its tests join the run once the
      // server side is merged, by deleting this line.
      exclude: ['test/jobs.test.ts', '**/node_modules/**'],
    },
  }),
)
