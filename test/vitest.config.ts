import { configDefaults, defineConfig } from 'vitest/config'

/**
 * The broker suites measure delivery under load against wall-clock rates
 * (2,000 messages a second through a broker's 20-message window and
 * 1,000-message queue): on a 2-core machine another test file running beside
 * them takes the CPU the writer needs, and the broker drops what its queue
 * cannot hold. They run after everything else, one file at a time.
 */
const brokerSuites = ['test/mqtt/brokers-*.test.ts']

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The JSON report is what .ci/run counts for its closing `tests:` line.
    reporters: ['default', 'json'],
    outputFile: { json: 'node_modules/.cache/plantops-db/vitest-report.json' },
    projects: [
      {
        extends: true,
        test: {
          name: 'suites',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...brokerSuites],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'brokers under load',
          include: brokerSuites,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
