export { guarded } from './database-errors.js'
export { finiteNumber, idSchema, instantSchema, storableText } from '../../schema/fields.js'
export { generateId } from './ids.js'
export {
  decodeCursor,
  encodeCursor,
  pageFields,
  toPage,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type Page,
} from './paging.js'
export { validate } from '../../util/validate.js'
export { olderThanCursor, timeCursorShape, timeKey, toTimePage } from './time-keyset.js'
