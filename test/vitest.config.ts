import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The JSON report is what .ci/run counts for its closing `tests:` line.
    reporters: ['default', 'json'],
    outputFile: { json: 'node_modules/.cache/plantops-db/vitest-report.json' },
  },
})
