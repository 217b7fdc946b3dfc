import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', mqtt: 'src/mqtt/index.ts', cli: 'src/cli/main.ts' },
  // ESM for `import`, CommonJS for `require` (NestJS and many other services are CommonJS).
  format: ['esm', 'cjs'],
  target: 'node20',
  platform: 'node',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  // Peers, including the optional ones, come from the host's node_modules, never the bundle.
  external: [
    'kysely',
    'pg',
    'zod',
    'commander',
    '@electric-sql/pglite',
    'mqtt',
    '@opentelemetry/api',
    '@opentelemetry/sdk-metrics',
    '@opentelemetry/exporter-prometheus',
  ],
})
