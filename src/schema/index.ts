export * from './metrics.js'
export * from './json-columns.js'
export type * from './database.js'
export * from './readings.js'
