import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * The dist tests import the built package, so build it once, fresh, before any
 * suite runs. Each test project runs this setup; the flag (in the one vitest
 * process that runs them all) keeps it to one build.
 */
export default function buildOnce(): void {
  if (process.env.PLANTOPS_TEST_DIST_BUILT === String(process.pid)) return
  const root = fileURLToPath(new URL('../..', import.meta.url))
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../../node_modules/tsup/dist/cli-default.js', import.meta.url))],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  process.env.PLANTOPS_TEST_DIST_BUILT = String(process.pid)
}
