/**
 * The admin URLs `fairlane top` asks: --admin values (each may list several, comma-separated),
 * else FAIRLANE_ADMIN_URL (same form), else this machine's admin port (FAIRLANE_ADMIN_PORT,
 * default 9090) on loopback.
 */
export function adminUrlsFrom(
  given: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const listed =
    given.length > 0 ? given : env['FAIRLANE_ADMIN_URL'] ? [env['FAIRLANE_ADMIN_URL']] : []
  const urls = listed
    .flatMap((value) => value.split(','))
    .map((url) => url.trim())
    .filter((url) => url !== '')
  if (urls.length > 0) return urls.map((url) => (/^https?:\/\//.test(url) ? url : `http://${url}`))
  return [`http://127.0.0.1:${env['FAIRLANE_ADMIN_PORT'] || 9090}`]
}
