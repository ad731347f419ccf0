import { installCleanup, stopAll } from './child.ts'

/**
 * The entry of every bench script: parses its flags (usage on --help, exit 2 on a bad flag),
 * then runs it so that every process it started is stopped whatever happens, and exits with
 * what the run returned (non-zero when its figures are not valid).
 */
export async function runBench<Options>(
  name: string,
  parse: (argv: string[]) => Options | undefined,
  usage: string,
  main: (options: Options) => Promise<number>,
): Promise<void> {
  let options: Options | undefined
  try {
    options = parse(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${usage}\n`)
    process.exit(2)
  }
  if (!options) {
    process.stdout.write(`${usage}\n`)
    return
  }
  installCleanup()
  let code = 1
  try {
    code = await main(options)
  } catch (err) {
    process.stderr.write(
      `${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    )
  } finally {
    await stopAll()
  }
  process.exit(code)
}
