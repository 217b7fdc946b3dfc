import type { Migration } from '../src/schema/migration.js'
import { createPlants } from './001_create_plants.js'
import { createDevices } from './002_create_devices.js'
import { createTelemetry } from './003_create_telemetry.js'
import { createAlerts } from './004_create_alerts.js'
import { createSettings } from './005_create_settings.js'
import { createCarePlans } from './006_create_care_plans.js'
import { uniqueTelemetryReading } from './007_unique_telemetry_reading.js'
import { createTelemetryRejects } from './008_create_telemetry_rejects.js'
import { trackDeviceContext } from './009_track_device_context.js'
import { createTelemetryRollups } from './010_create_telemetry_rollups.js'
import { roomForDeviceUpdates } from './011_room_for_device_updates.js'
import { createPlantRollups } from './012_create_plant_rollups.js'
import { createPlantFiveMinuteRollups } from './013_create_plant_five_minute_rollups.js'
import type { MigrationContext } from './context.js'

export type { MigrationContext } from './context.js'

/**
 * Every migration of this release, by name. Imported statically, so they are
 * part of the build and of any bundle; nothing reads a folder at run time.
 */
export function buildMigrations(context: MigrationContext): Record<string, Migration> {
  return {
    '001_create_plants': createPlants,
    '002_create_devices': createDevices,
    '003_create_telemetry': createTelemetry(context),
    '004_create_alerts': createAlerts,
    '005_create_settings': createSettings,
    '006_create_care_plans': createCarePlans,
    '007_unique_telemetry_reading': uniqueTelemetryReading(context),
    '008_create_telemetry_rejects': createTelemetryRejects,
    '009_track_device_context': trackDeviceContext,
    '010_create_telemetry_rollups': createTelemetryRollups(context),
    '011_room_for_device_updates': roomForDeviceUpdates,
    '012_create_plant_rollups': createPlantRollups(context),
    '013_create_plant_five_minute_rollups': createPlantFiveMinuteRollups(context),
  }
}
