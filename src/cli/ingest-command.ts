import { join } from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'
import { globalsOf, integer } from './context.js'
import { isModuleNotFound } from '../util/modules.js'

/** The flags of `plantops-db ingest`, each also read from the environment. */
export interface IngestFlags {
  readonly mqttUrl: string
  readonly clientId?: string
  readonly shareGroup?: string
  readonly connections?: number
  readonly delivery: 'at-least-once' | 'at-most-once'
  readonly topicPrefix: string
  readonly autoProvision?: boolean
  readonly port: number
  readonly host: string
  readonly stallSeconds: number
  /** `false` with `--no-spool`. */
  readonly spool: boolean
  readonly spoolDir?: string
  readonly spoolMaxBytes: number
}

/**
 * Where `ingest` spools by default: under systemd's `$STATE_DIRECTORY` (the
 * first, when it names several), else under the working directory.
 */
export function defaultSpoolDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.STATE_DIRECTORY?.split(':')[0]
  return state ? join(state, 'spool') : join(process.cwd(), 'plantops-spool')
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
}

/** A size flag: bytes, or a number with kB, MB, GB, KiB, MiB or GiB. */
export const byteSize =
  (flag: string, min: number) =>
  (value: string): number => {
    const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?)?b?$/i.exec(value.trim())
    const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? '').toLowerCase()]!) : Number.NaN
    if (!Number.isSafeInteger(bytes) || bytes < min) {
      throw new InvalidArgumentError(`${flag} must be a size of at least ${min} bytes, such as 512MiB or 2GiB.`)
    }
    return bytes
  }

const OPTIONAL_PACKAGES = [
  'mqtt',
  '@opentelemetry/api',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/exporter-prometheus',
]

/** Loads the service only when it runs: it needs optional peers the other commands do without. */
async function run(flags: IngestFlags, command: Command): Promise<void> {
  let service: typeof import('./ingest.js')
  try {
    service = await import('./ingest.js')
  } catch (error) {
    if (!isModuleNotFound(error)) throw error
    throw new Error(
      `plantops-db ingest needs ${OPTIONAL_PACKAGES.join(', ')} beside plantops-db: ` +
        `npm install ${OPTIONAL_PACKAGES.join(' ')} (${(error as Error).message.split('\n')[0]})`,
      { cause: error },
    )
  }
  await service.runIngest(flags, globalsOf(command))
}

/** `plantops-db ingest`. */
export function ingestCommand(): Command {
  return new Command('ingest')
    .description(
      'run the telemetry writer and the MQTT ingestor as a service: Prometheus metrics at /metrics, ' +
        '/healthz and /readyz on --port, JSON log lines on stdout; SIGTERM or SIGINT drains and exits 0',
    )
    .addOption(
      new Option('--mqtt-url <url>', 'the broker, e.g. mqtt://127.0.0.1:1883').env('MQTT_URL').makeOptionMandatory(),
    )
    .addOption(
      new Option('--client-id <id>', 'MQTT client id (default plantops-ingest-<hostname>)').env('PLANTOPS_CLIENT_ID'),
    )
    .addOption(
      new Option('--share-group <name>', 'share the stream with other ingestors in this group').env(
        'PLANTOPS_SHARE_GROUP',
      ),
    )
    .addOption(
      new Option('--connections <n>', 'broker connections (default 2 on MQTT 5, 1 on 3.1.1)')
        .env('PLANTOPS_CONNECTIONS')
        .argParser(integer('--connections', 1, 64)),
    )
    .addOption(
      new Option('--delivery <guarantee>', 'acknowledge after durable, or on receipt')
        .choices(['at-least-once', 'at-most-once'])
        .env('PLANTOPS_DELIVERY')
        .default('at-least-once'),
    )
    .addOption(
      new Option('--topic-prefix <prefix>', 'topics are <prefix>/<device>/telemetry|status')
        .env('PLANTOPS_TOPIC_PREFIX')
        .default('plantops'),
    )
    .addOption(new Option('--auto-provision', 'register unknown devices that send readings'))
    .addOption(
      new Option('--port <n>', 'port of /metrics, /healthz and /readyz (0: any free port)')
        .env('PLANTOPS_METRICS_PORT')
        .argParser(integer('--port', 0, 65_535))
        .default(9464),
    )
    .addOption(new Option('--host <address>', 'address to listen on').env('PLANTOPS_METRICS_HOST').default('0.0.0.0'))
    .addOption(
      new Option('--stall-seconds <n>', '/readyz fails when rows wait this long without a batch committing')
        .argParser(integer('--stall-seconds', 1, 86_400))
        .default(30),
    )
    .addOption(
      new Option(
        '--spool-dir <dir>',
        'durable local spool: messages are acknowledged once fsync here, and drained into the database ' +
          '(default $STATE_DIRECTORY/spool, else ./plantops-spool)',
      ).env('PLANTOPS_SPOOL_DIR'),
    )
    .addOption(
      new Option('--spool-max-bytes <size>', 'the most the spool keeps on disk; then acknowledgements wait')
        .env('PLANTOPS_SPOOL_MAX_BYTES')
        .argParser(byteSize('--spool-max-bytes', 1024 * 1024))
        .default(1024 ** 3, '1GiB'),
    )
    .addOption(
      new Option('--no-spool', 'acknowledge only after commit, with no local spool (the broker holds the backlog)'),
    )
    .action(run)
}
