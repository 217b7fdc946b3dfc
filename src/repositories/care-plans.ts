import { sql, type Kysely } from 'kysely'
import { NotFoundError } from '../errors/errors.js'
import type { CarePlan, Database } from '../schema/database.js'
import { planDataSchema, type PlanData } from '../schema/json-columns.js'
import { guarded, idSchema, validate } from './shared/index.js'

/**
 * The `care_plans` repository: at most one plan per plant, validated by
 * `planDataSchema`.
 *
 * @example
 * ```ts
 * const { carePlans } = createRepositories(db)
 * await carePlans.upsert('plant_fern', plan) // creates, or replaces and bumps generated_at
 * const current = await carePlans.get('plant_fern')
 * ```
 */
export interface CarePlansRepository {
  /** Creates the plant's plan; `ConflictError` when it has one, `MissingReferenceError` for an unknown plant. */
  create(plantId: string, planData: PlanData): Promise<CarePlan>
  /** Creates or replaces the plant's plan, bumping `generated_at`. */
  upsert(plantId: string, planData: PlanData): Promise<CarePlan>
  /** The plant's plan, or `NotFoundError`. */
  get(plantId: string): Promise<CarePlan>
  /** The plant's plan, or `undefined`. */
  find(plantId: string): Promise<CarePlan | undefined>
  /** Deletes the plant's plan; `NotFoundError` when it has none. */
  delete(plantId: string): Promise<void>
}

export function createCarePlansRepository(db: Kysely<Database>): CarePlansRepository {
  const inputOf = (plantId: string, planData: PlanData) => ({
    plant_id: validate(idSchema, plantId, 'plant id'),
    plan_data: JSON.stringify(validate(planDataSchema, planData, 'care plan')),
  })
  const find = (plantId: string) =>
    db
      .selectFrom('care_plans')
      .selectAll()
      .where('plant_id', '=', validate(idSchema, plantId, 'plant id'))
      .executeTakeFirst()

  return {
    async create(plantId, planData) {
      const row = inputOf(plantId, planData)
      return guarded('care plan', () =>
        db.insertInto('care_plans').values(row).returningAll().executeTakeFirstOrThrow(),
      )
    },

    async upsert(plantId, planData) {
      const row = inputOf(plantId, planData)
      return guarded('care plan', () =>
        db
          .insertInto('care_plans')
          .values(row)
          .onConflict((oc) => oc.column('plant_id').doUpdateSet({ plan_data: row.plan_data, generated_at: sql`now()` }))
          .returningAll()
          .executeTakeFirstOrThrow(),
      )
    },

    async get(plantId) {
      const plan = await find(plantId)
      if (!plan) throw new NotFoundError('care plan of plant', plantId)
      return plan
    },

    find,

    async delete(plantId) {
      const key = validate(idSchema, plantId, 'plant id')
      const deleted = await db.deleteFrom('care_plans').where('plant_id', '=', key).returning('id').executeTakeFirst()
      if (!deleted) throw new NotFoundError('care plan of plant', key)
    },
  }
}
