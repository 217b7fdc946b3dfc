import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The dist tests import the built package, so build it once, fresh, before any suite runs. */
export default function buildOnce(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../../node_modules/tsup/dist/cli-default.js', import.meta.url))],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
}
