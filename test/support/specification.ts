import type { ColumnInfo, TableInfo } from './catalog.js'

/**
 * The seed specification of the foundation issue, as the catalog must show it.
 * Written from the issue text, not from the migrations, so the two check each other.
 */
const text = (nullable = true, def: string | null = null): ColumnInfo => ({ type: 'text', nullable, default: def })
const jsonb = (nullable = true): ColumnInfo => ({ type: 'jsonb', nullable, default: null })
const float = (nullable = true): ColumnInfo => ({ type: 'double precision', nullable, default: null })
const timestamptz = (nullable = true, def: string | null = null): ColumnInfo => ({
  type: 'timestamp with time zone',
  nullable,
  default: def,
})
const serial = (sequence: string): ColumnInfo => ({
  type: 'integer',
  nullable: false,
  default: `nextval('${sequence}'::regclass)`,
})

/** Per metric, the four aggregate columns both rollups have, as spelled in SQL (not from src). */
const ROLLUP_AGGREGATE_COLUMNS: Record<string, ColumnInfo> = Object.fromEntries(
  ['soil_moisture', 'temperature', 'humidity', 'light_level'].flatMap((metric) => [
    [`${metric}_sum`, { type: 'double precision', nullable: false, default: '0' }],
    [`${metric}_count`, { type: 'integer', nullable: false, default: '0' }],
    [`${metric}_min`, float()],
    [`${metric}_max`, float()],
  ]),
)

export const specification: Record<string, TableInfo> = {
  plants: {
    columns: {
      id: text(false),
      name: text(false),
      species: text(),
      thresholds: jsonb(),
      created_at: timestamptz(true, 'now()'),
    },
    primaryKey: ['id'],
    unique: [],
    foreignKeys: [],
    indexes: {},
  },
  devices: {
    columns: {
      id: text(false),
      mac_address: text(),
      mqtt_username: text(),
      mqtt_password_hash: text(false),
      plant_id: text(),
      status: text(true, "'provisioning'::text"),
      firmware_version: text(),
      sensor_types: jsonb(),
      last_seen_at: timestamptz(),
      created_at: timestamptz(true, 'now()'),
    },
    primaryKey: ['id'],
    unique: [['mac_address'], ['mqtt_username']],
    foreignKeys: [{ columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'SET NULL' }],
    indexes: { idx_devices_plant_id: ['plant_id'], idx_devices_status: ['status'] },
  },
  telemetry: {
    columns: {
      time: timestamptz(false),
      device_id: text(),
      plant_id: text(),
      soil_moisture: float(),
      temperature: float(),
      humidity: float(),
      light_level: float(),
    },
    primaryKey: [],
    unique: [],
    foreignKeys: [
      { columns: ['device_id'], references: 'devices', referencedColumns: ['id'], onDelete: 'CASCADE' },
      { columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'SET NULL' },
    ],
    indexes: {
      idx_telemetry_device: ['device_id', 'time DESC'],
      idx_telemetry_device_time_unique: ['device_id', 'time'],
      idx_telemetry_plant: ['plant_id', 'time DESC'],
    },
  },
  alerts: {
    columns: {
      id: serial('alerts_id_seq'),
      plant_id: text(),
      device_id: text(),
      metric: text(false),
      value: float(false),
      threshold: float(false),
      direction: text(false),
      sent_at: timestamptz(true, 'now()'),
    },
    primaryKey: ['id'],
    unique: [],
    foreignKeys: [
      { columns: ['device_id'], references: 'devices', referencedColumns: ['id'], onDelete: 'CASCADE' },
      { columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'CASCADE' },
    ],
    indexes: { idx_alerts_plant: ['plant_id', 'sent_at DESC'] },
  },
  settings: {
    columns: {
      key: text(false),
      value: text(false),
      updated_at: timestamptz(true, 'now()'),
    },
    primaryKey: ['key'],
    unique: [],
    foreignKeys: [],
    indexes: {},
  },
  care_plans: {
    columns: {
      id: serial('care_plans_id_seq'),
      plant_id: text(),
      plan_data: jsonb(false),
      generated_at: timestamptz(true, 'now()'),
    },
    primaryKey: ['id'],
    unique: [['plant_id']],
    foreignKeys: [{ columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'CASCADE' }],
    indexes: {},
  },
}

/** What the writer's migrations (007–010) add beside the seed tables. */
Object.assign(specification, {
  telemetry_rejects: {
    columns: {
      id: { type: 'bigint', nullable: false, default: "nextval('telemetry_rejects_id_seq'::regclass)" },
      received_at: timestamptz(false, 'now()'),
      device_id: text(),
      source: text(),
      payload: { type: 'bytea', nullable: false, default: null },
      reason: text(false),
      detail: text(),
      replayed_at: timestamptz(),
    },
    primaryKey: ['id'],
    unique: [],
    foreignKeys: [],
    indexes: { idx_telemetry_rejects_pending: ['id'], idx_telemetry_rejects_reason: ['reason', 'received_at DESC'] },
  },
  plantops_context_epoch: {
    columns: {
      id: { type: 'boolean', nullable: false, default: 'true' },
      epoch: { type: 'bigint', nullable: false, default: '0' },
    },
    primaryKey: ['id'],
    unique: [],
    foreignKeys: [],
    indexes: {},
  },
  telemetry_hourly: {
    columns: {
      hour: timestamptz(false),
      device_id: text(),
      plant_id: text(),
      readings: { type: 'integer', nullable: false, default: null },
      ...ROLLUP_AGGREGATE_COLUMNS,
    },
    primaryKey: [],
    unique: [],
    foreignKeys: [
      { columns: ['device_id'], references: 'devices', referencedColumns: ['id'], onDelete: 'CASCADE' },
      // No action: a trigger merges a deleted plant's hours into the plantless ones first.
      { columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'NO ACTION' },
    ],
    indexes: {
      idx_telemetry_hourly_key: ["COALESCE(device_id, ''::text)", 'hour', "COALESCE(plant_id, ''::text)"],
      idx_telemetry_hourly_plant: ['plant_id', 'hour'],
    },
  },
  telemetry_plant_hourly: {
    columns: {
      plant_id: text(false),
      hour: timestamptz(false),
      readings: { type: 'integer', nullable: false, default: null },
      ...ROLLUP_AGGREGATE_COLUMNS,
    },
    primaryKey: ['plant_id', 'hour'],
    unique: [],
    foreignKeys: [{ columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'CASCADE' }],
    indexes: {},
  },
  telemetry_plant_5min: {
    columns: {
      plant_id: text(false),
      start: timestamptz(false),
      readings: { type: 'integer', nullable: false, default: null },
      ...ROLLUP_AGGREGATE_COLUMNS,
    },
    primaryKey: ['plant_id', 'start'],
    unique: [],
    foreignKeys: [{ columns: ['plant_id'], references: 'plants', referencedColumns: ['id'], onDelete: 'CASCADE' }],
    indexes: {},
  },
} satisfies Record<string, TableInfo>)

export const SEED_MIGRATIONS = [
  '001_create_plants',
  '002_create_devices',
  '003_create_telemetry',
  '004_create_alerts',
  '005_create_settings',
  '006_create_care_plans',
]

/** Every migration of this release, in order. */
export const ALL_MIGRATIONS = [
  ...SEED_MIGRATIONS,
  '007_unique_telemetry_reading',
  '008_create_telemetry_rejects',
  '009_track_device_context',
  '010_create_telemetry_rollups',
  '011_room_for_device_updates',
  '012_create_plant_rollups',
  '013_create_plant_five_minute_rollups',
]
