import { readFile } from 'node:fs/promises'
import { Command } from 'commander'
import { createDevicesRepository, type ProvisionInput } from '../repositories/devices.js'
import { DEFAULT_PASSWORD_ITERATIONS } from '../repositories/mosquitto-password.js'
import { integer, print, UsageError, withDatabase } from './context.js'
import { writeFileAtomically } from './password-file.js'

const devicesOf = (db: Parameters<typeof createDevicesRepository>[0]) =>
  createDevicesRepository(db, { passwordIterations: DEFAULT_PASSWORD_ITERATIONS })

const credentialLines = (deviceId: string, credentials: { username: string; password: string }) => [
  `device    ${deviceId}`,
  `username  ${credentials.username}`,
  `password  ${credentials.password}`,
  'The password is shown this once and stored only as a hash: give it to the device now.',
]

interface ProvisionFlags {
  readonly mac: string
  readonly sensor: string[]
  readonly plant?: string
  readonly firmware?: string
}

async function provision(flags: ProvisionFlags, command: Command): Promise<void> {
  const { device, credentials } = await withDatabase(command, (db) =>
    devicesOf(db).provision({
      macAddress: flags.mac,
      sensorTypes: flags.sensor as ProvisionInput['sensorTypes'], // checked by provision()
      ...(flags.plant !== undefined && { plantId: flags.plant }),
      ...(flags.firmware !== undefined && { firmwareVersion: flags.firmware }),
    }),
  )
  print(command, { device, credentials }, () => credentialLines(device.id, credentials))
}

async function rotate(deviceId: string, _flags: object, command: Command): Promise<void> {
  const credentials = await withDatabase(command, (db) => devicesOf(db).rotateCredentials(deviceId))
  print(command, { deviceId, credentials }, () => credentialLines(deviceId, credentials))
}

/** The process id to send SIGHUP to: given, or read from the broker's pid file. */
async function brokerPid(flags: PasswordFileFlags): Promise<number | undefined> {
  if (flags.sighup !== undefined && flags.pidFile !== undefined)
    throw new UsageError('give --sighup or --pid-file, not both')
  if (flags.pidFile === undefined) return flags.sighup
  const text = (await readFile(flags.pidFile, 'utf8')).trim()
  const pid = Number(text)
  if (!Number.isInteger(pid) || pid < 1)
    throw new Error(`${flags.pidFile} holds no process id ("${text.slice(0, 40)}")`)
  return pid
}

interface PasswordFileFlags {
  readonly out: string
  readonly sighup?: number
  readonly pidFile?: string
}

async function passwordFile(flags: PasswordFileFlags, command: Command): Promise<void> {
  const pid = await brokerPid(flags)
  const contents = await withDatabase(command, (db) => devicesOf(db).mosquittoPasswordFile())
  await writeFileAtomically(flags.out, contents)
  if (pid !== undefined) process.kill(pid, 'SIGHUP')
  const entries = contents.split('\n').filter((line) => line.length > 0).length
  print(command, { path: flags.out, entries, reloaded: pid ?? null }, () => [
    `wrote ${entries} device${entries === 1 ? '' : 's'} to ${flags.out} (mode 0600)`,
    ...(pid !== undefined ? [`sent SIGHUP to process ${pid}, so the broker reloads it`] : []),
  ])
}

const collect = (value: string, previous: string[] = []) => [...previous, value]

/** `plantops-db devices provision|rotate|password-file`. */
export function devicesCommand(): Command {
  const devices = new Command('devices').description('provision devices and manage their MQTT credentials')
  devices.addCommand(
    new Command('provision')
      .description('register a device and print its MQTT credentials, once')
      .requiredOption('--mac <address>', 'the MAC address, e.g. AA:BB:CC:00:11:22')
      .requiredOption('--sensor <metric>', 'a metric it measures (repeat for each)', collect)
      .option('--plant <id>', 'the plant it watches')
      .option('--firmware <version>', 'its firmware version')
      .action(provision),
  )
  devices.addCommand(
    new Command('rotate')
      .description('give a device a new password (the old one stops working) and print it, once')
      .argument('<device-id>', 'the device, e.g. dev_01H…')
      .action(rotate),
  )
  devices.addCommand(
    new Command('password-file')
      .description("write Mosquitto's password file for every active device, atomically, mode 0600")
      .requiredOption('--out <path>', 'the file Mosquitto reads (its password_file setting)')
      .option(
        '--sighup <pid>',
        'then send SIGHUP to this process (the broker), so it reloads the file',
        integer('--sighup', 1, 4_194_304),
      )
      .option('--pid-file <path>', "then send SIGHUP to the process named in this file (Mosquitto's pid_file)")
      .action(passwordFile),
  )
  return devices
}
