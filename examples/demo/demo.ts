/**
 * `npm run demo` (the quickstart tour) and `npm run demo -- noisy [seconds]` (noisy neighbour).
 */
import { noisyDemo } from './noisy.ts'
import { quickstartDemo } from './quickstart.ts'

const [story, ...rest] = process.argv.slice(2)
process.once('SIGINT', () => process.exit(130))
if (story === 'noisy') await noisyDemo(rest)
else if (story === undefined || story === 'quickstart') await quickstartDemo()
else {
  console.error(`unknown demo "${story}": use \`npm run demo\` or \`npm run demo -- noisy\``)
  process.exitCode = 2
}
