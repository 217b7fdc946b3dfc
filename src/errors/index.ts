export * from './errors.js'
export { isTransientDatabaseError, sqlStateOf } from './sqlstate.js'
