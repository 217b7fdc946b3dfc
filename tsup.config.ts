import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', mqtt: 'src/mqtt/index.ts' },
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
  external: ['kysely', 'pg', 'zod', '@electric-sql/pglite', 'mqtt', '@opentelemetry/api'],
})
