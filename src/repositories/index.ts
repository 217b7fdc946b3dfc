import type { Kysely } from 'kysely'
import { z } from 'zod'
import type { Database } from '../schema/database.js'
import { createAlertsRepository, type AlertsRepository } from './alerts.js'
import { createCarePlansRepository, type CarePlansRepository } from './care-plans.js'
import { createDevicesRepository, type DevicesRepository } from './devices.js'
import { DEFAULT_PASSWORD_ITERATIONS } from './mosquitto-password.js'
import { createPlantsRepository, type PlantsRepository } from './plants.js'
import { createRejectsRepository, type RejectsRepository } from './rejects.js'
import { createSettingsRepository, type SettingsRepository } from './settings.js'
import { validate } from './shared/index.js'
import { createTelemetryRepository, type TelemetryRepository } from './telemetry.js'

/**
 * Options of `createRepositories`.
 *
 * @example
 * ```ts
 * import { createRepositories, type RepositoryOptions } from 'plantops-db'
 * const options: RepositoryOptions = { passwordIterations: 600_000 }
 * const repos = createRepositories(db, options)
 * ```
 */
export interface RepositoryOptions {
  /** PBKDF2-SHA512 iterations for new device passwords. Default {@link DEFAULT_PASSWORD_ITERATIONS} (210 000). */
  readonly passwordIterations?: number
}

const optionsSchema = z.strictObject({
  passwordIterations: z.number().int().min(1_000).max(10_000_000).default(DEFAULT_PASSWORD_ITERATIONS),
})

/**
 * One repository per table. Pass a transaction instead of the database to
 * combine several calls atomically.
 *
 * @example
 * ```ts
 * import { createRepositories } from 'plantops-db'
 * const { plants, devices } = createRepositories(db)
 * ```
 */
export interface Repositories {
  readonly plants: PlantsRepository
  readonly devices: DevicesRepository
  readonly telemetry: TelemetryRepository
  readonly alerts: AlertsRepository
  readonly settings: SettingsRepository
  readonly carePlans: CarePlansRepository
  readonly rejects: RejectsRepository
}

/**
 * Creates the repositories over `db`, which may be the database or a
 * transaction. Every method validates its input before any SQL runs and
 * throws typed errors (`ValidationError`, `NotFoundError`, `ConflictError`,
 * `MissingReferenceError`, `InvalidStateError`).
 *
 * @example
 * ```ts
 * import { createDatabase, createRepositories, migrateToLatest } from 'plantops-db'
 * const db = createDatabase()
 * await migrateToLatest(db)
 * const plant = await createRepositories(db).plants.create({ name: 'Fern' })
 *
 * // Atomically: both or neither.
 * await db.transaction().execute(async (trx) => {
 *   const repos = createRepositories(trx)
 *   const basil = await repos.plants.create({ name: 'Basil' })
 *   await repos.devices.assignPlant('dev_1', basil.id)
 * })
 * ```
 */
export function createRepositories(db: Kysely<Database>, options: RepositoryOptions = {}): Repositories {
  const { passwordIterations } = validate(optionsSchema, options, 'repository options')
  return Object.freeze({
    plants: createPlantsRepository(db),
    devices: createDevicesRepository(db, { passwordIterations }),
    telemetry: createTelemetryRepository(db),
    alerts: createAlertsRepository(db),
    settings: createSettingsRepository(db),
    carePlans: createCarePlansRepository(db),
    rejects: createRejectsRepository(db),
  })
}

export type {
  AlertsRepository,
  CarePlansRepository,
  DevicesRepository,
  PlantsRepository,
  RejectsRepository,
  SettingsRepository,
  TelemetryRepository,
}
export { alertListOptionsSchema, newAlertInputSchema, type AlertListOptions, type NewAlertInput } from './alerts.js'
export {
  deviceListOptionsSchema,
  provisionInputSchema,
  seenEntriesSchema,
  type DeviceCredentials,
  type DeviceListOptions,
  type ProvisionInput,
  type SeenEntry,
} from './devices.js'
export { macAddressSchema } from './mac-address.js'
export { DEFAULT_PASSWORD_ITERATIONS, hashDevicePassword, verifyDevicePassword } from './mosquitto-password.js'
export {
  newPlantInputSchema,
  plantChangesSchema,
  plantListOptionsSchema,
  type NewPlantInput,
  type PlantChanges,
  type PlantListOptions,
} from './plants.js'
export { rejectListOptionsSchema, type RejectCount, type RejectListOptions } from './rejects.js'
export { KNOWN_SETTINGS, type KnownSettingKey } from './settings.js'
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page } from './shared/index.js'
export {
  ageSchema,
  BUCKET_WIDTHS,
  rebuildRollupsOptionsSchema,
  telemetryBucketOptionsSchema,
  telemetryInputSchema,
  telemetryRangeOptionsSchema,
  type AgedTelemetry,
  type LatestFor,
  type MetricAggregate,
  type RebuildRollupsOptions,
  type RebuildRollupsResult,
  type RetentionResult,
  type TelemetryBucket,
  type TelemetryBucketOptions,
  type TelemetryInput,
  type TelemetryRangeOptions,
} from './telemetry.js'
