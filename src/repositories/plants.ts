import type { Kysely } from 'kysely'
import { z } from 'zod'
import { NotFoundError } from '../errors/errors.js'
import type { Database, Plant } from '../schema/database.js'
import { thresholdsSchema } from '../schema/json-columns.js'
import {
  decodeCursor,
  generateId,
  guarded,
  idSchema,
  pageFields,
  storableText,
  toPage,
  validate,
  type Page,
} from './shared/index.js'

/**
 * Input of `plants.create`. `id` is generated (`plant_…`) when left out.
 *
 * @example
 * ```ts
 * import { newPlantInputSchema } from 'plantops-db'
 * newPlantInputSchema.parse({ name: 'Fern', species: 'Nephrolepis exaltata' })
 * ```
 */
export const newPlantInputSchema = z.strictObject({
  id: idSchema.optional(),
  name: storableText(200).min(1),
  species: storableText(200).nullable().optional(),
  thresholds: thresholdsSchema.nullable().optional(),
})

/**
 * Input of `plants.update`: the fields to change, at least one.
 *
 * @example
 * ```ts
 * import { plantChangesSchema } from 'plantops-db'
 * plantChangesSchema.parse({ species: null })
 * ```
 */
export const plantChangesSchema = z
  .strictObject({ name: storableText(200).min(1).optional(), species: storableText(200).nullable().optional() })
  .refine((changes) => changes.name !== undefined || changes.species !== undefined, {
    message: 'give at least one of name and species',
  })

/**
 * Options of `plants.list`: an optional species filter and a page.
 *
 * @example
 * ```ts
 * import { plantListOptionsSchema } from 'plantops-db'
 * plantListOptionsSchema.parse({ species: 'Monstera deliciosa', limit: 20 })
 * ```
 */
export const plantListOptionsSchema = z.strictObject({ species: storableText(200).optional(), ...pageFields })

/** Input of `plants.create`. @example `const input: NewPlantInput = { name: 'Fern' }` */
export type NewPlantInput = z.input<typeof newPlantInputSchema>
/** Input of `plants.update`. @example `const changes: PlantChanges = { name: 'Boston fern' }` */
export type PlantChanges = z.input<typeof plantChangesSchema>
/** Options of `plants.list`. @example `const options: PlantListOptions = { limit: 10 }` */
export type PlantListOptions = z.input<typeof plantListOptionsSchema>

const cursorShape = z.tuple([z.string()])

/**
 * The `plants` repository: create, read, list, update, thresholds, delete.
 * Get it from `createRepositories(db).plants`.
 *
 * @example
 * ```ts
 * const { plants } = createRepositories(db)
 * const fern = await plants.create({ name: 'Fern', thresholds: { soil_moisture: { min: 30 } } })
 * await plants.update(fern.id, { species: 'Nephrolepis exaltata' })
 * ```
 */
export interface PlantsRepository {
  /** Creates a plant; `ConflictError` when the id is taken. */
  create(input: NewPlantInput): Promise<Plant>
  /** The plant, or `NotFoundError`. */
  get(id: string): Promise<Plant>
  /** The plant, or `undefined`. */
  find(id: string): Promise<Plant | undefined>
  /** Plants by id, optionally of one species, a page at a time. */
  list(options?: PlantListOptions): Promise<Page<Plant>>
  /** Changes name and/or species; `NotFoundError` when absent. */
  update(id: string, changes: PlantChanges): Promise<Plant>
  /** Replaces the alert thresholds (`null` clears them); `NotFoundError` when absent. */
  setThresholds(id: string, thresholds: z.input<typeof thresholdsSchema> | null): Promise<Plant>
  /** Deletes the plant (its devices and telemetry keep their rows, unassigned); `NotFoundError` when absent. */
  delete(id: string): Promise<void>
}

export function createPlantsRepository(db: Kysely<Database>): PlantsRepository {
  const find = async (id: string): Promise<Plant | undefined> => {
    const key = validate(idSchema, id, 'plant id')
    return db.selectFrom('plants').selectAll().where('id', '=', key).executeTakeFirst()
  }
  const found = (id: string, plant: Plant | undefined): Plant => {
    if (!plant) throw new NotFoundError('plant', id)
    return plant
  }

  return {
    async create(input) {
      const plant = validate(newPlantInputSchema, input, 'plant')
      const row = {
        id: plant.id ?? generateId('plant'),
        name: plant.name,
        species: plant.species ?? null,
        thresholds: plant.thresholds ? JSON.stringify(plant.thresholds) : null,
      }
      return guarded('plant', () => db.insertInto('plants').values(row).returningAll().executeTakeFirstOrThrow())
    },

    async get(id) {
      return found(id, await find(id))
    },

    find,

    async list(options = {}) {
      const { species, limit, cursor } = validate(plantListOptionsSchema, options, 'plant list options')
      let query = db
        .selectFrom('plants')
        .selectAll()
        .orderBy('id')
        .limit(limit + 1)
      if (species !== undefined) query = query.where('species', '=', species)
      if (cursor !== undefined)
        query = query.where('id', '>', decodeCursor(cursor, cursorShape, 'plant list options')[0])
      return toPage(await query.execute(), limit, (plant) => [plant.id])
    },

    async update(id, changes) {
      const key = validate(idSchema, id, 'plant id')
      const { name, species } = validate(plantChangesSchema, changes, 'plant changes')
      const updated = await guarded('plant', () =>
        db
          .updateTable('plants')
          .set({ ...(name !== undefined && { name }), ...(species !== undefined && { species }) })
          .where('id', '=', key)
          .returningAll()
          .executeTakeFirst(),
      )
      return found(key, updated)
    },

    async setThresholds(id, thresholds) {
      const key = validate(idSchema, id, 'plant id')
      const value = validate(thresholdsSchema.nullable(), thresholds, 'thresholds')
      const updated = await db
        .updateTable('plants')
        .set({ thresholds: value === null ? null : JSON.stringify(value) })
        .where('id', '=', key)
        .returningAll()
        .executeTakeFirst()
      return found(key, updated)
    },

    async delete(id) {
      const key = validate(idSchema, id, 'plant id')
      const deleted = await db.deleteFrom('plants').where('id', '=', key).returning('id').executeTakeFirst()
      if (!deleted) throw new NotFoundError('plant', key)
    },
  }
}
