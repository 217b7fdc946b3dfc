export { Spool, type SpoolStats } from './spool.js'
export type { SpoolOptions } from './options.js'
export type { SpoolConsumer } from './drain.js'
export type { SpoolRecord } from './record.js'
