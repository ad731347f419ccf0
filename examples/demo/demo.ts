/**
 * `npm run demo` (the quickstart tour), `npm run demo -- noisy [seconds]` (noisy neighbour),
 * `npm run demo -- inbound [seconds]` (a lane per customer in front of your own API),
 * `npm run demo -- llm` (one OpenAI-compatible base URL, a budget in tokens) and
 * `npm run demo -- jobs` (an async job to a signed webhook).
 */
import { inboundDemo } from './inbound.ts'
import { jobsDemo } from './jobs.ts'
import { llmDemo } from './llm.ts'
import { noisyDemo } from './noisy.ts'
import { quickstartDemo } from './quickstart.ts'

const [story, ...rest] = process.argv.slice(2)
process.once('SIGINT', () => process.exit(130))
if (story === 'noisy') await noisyDemo(rest)
else if (story === 'inbound') await inboundDemo(rest)
else if (story === 'llm') await llmDemo()
else if (story === 'jobs') await jobsDemo()
else if (story === undefined || story === 'quickstart') await quickstartDemo()
else {
  console.error(
    `unknown demo "${story}": use \`npm run demo\`, \`npm run demo -- noisy\`, \`npm run demo -- inbound\` or \`npm run demo -- llm\``,
  )
  process.exitCode = 2
}
