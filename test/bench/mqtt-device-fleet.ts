/**
 * A lean simulated fleet for `npm run bench:mqtt`: one TCP connection that
 * speaks MQTT 3.1.1 the way device firmware does, with no client library in
 * between. It CONNECTs, PUBLISHes QoS 1 messages with packet identifiers,
 * keeps at most `window` of them unacknowledged and counts every PUBACK, so
 * each message counted as published was accepted by the broker.
 *
 * Why not mqtt.js here: on a two-core machine, mqtt.js publishers spent about
 * 70% of a core (promises, packet objects, its outgoing store) that real
 * devices, on their own hardware, never take from the ingestor, the broker or
 * PostgreSQL. `BENCH_PUBLISHER=mqtt.js` runs the mqtt.js publisher instead.
 */
import { connect, type Socket } from 'node:net'

export interface FleetOptions {
  readonly url: string
  readonly clientId: string
  readonly topicOf: (i: number) => string
  readonly payloadOf: (i: number) => string
  readonly count: number
  /** Messages per second; 0 for as fast as the broker acknowledges. */
  readonly rate: number
  readonly window: number
}

function remainingLength(length: number): number[] {
  const bytes: number[] = []
  do {
    let byte = length % 128
    length = Math.floor(length / 128)
    if (length > 0) byte |= 0x80
    bytes.push(byte)
  } while (length > 0)
  return bytes
}

function utf8Field(text: string): Buffer {
  const body = Buffer.from(text, 'utf8')
  const out = Buffer.allocUnsafe(2 + body.length)
  out.writeUInt16BE(body.length, 0)
  body.copy(out, 2)
  return out
}

function connectFrame(clientId: string): Buffer {
  const variable = Buffer.concat([utf8Field('MQTT'), Buffer.from([4, 0x02, 0, 60])]) // 3.1.1, clean session, keep-alive 60 s
  const body = Buffer.concat([variable, utf8Field(clientId)])
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body])
}

function publishFrame(topic: string, payload: string, packetId: number): Buffer {
  const topicField = utf8Field(topic)
  const payloadBytes = Buffer.from(payload, 'utf8')
  const length = topicField.length + 2 + payloadBytes.length
  const header = [0x32, ...remainingLength(length)] // PUBLISH, QoS 1
  const frame = Buffer.allocUnsafe(header.length + length)
  let at = 0
  for (const byte of header) frame[at++] = byte
  at += topicField.copy(frame, at)
  at = frame.writeUInt16BE(packetId, at)
  payloadBytes.copy(frame, at)
  return frame
}

/** Reads whole control packets off the socket; calls `onPacket(type, body)`. */
function packetReader(onPacket: (type: number, body: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    for (;;) {
      if (pending.length < 2) return
      let length = 0
      let multiplier = 1
      let at = 1
      for (;;) {
        if (at >= pending.length) return
        const byte = pending[at++]!
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) break
      }
      if (pending.length < at + length) return
      onPacket(pending[0]! >> 4, pending.subarray(at, at + length))
      pending = pending.subarray(at + length)
    }
  }
}

/** Publishes `count` QoS 1 messages; resolves once the broker has acknowledged all of them. */
export async function publishFleet(options: FleetOptions): Promise<void> {
  const url = new URL(options.url)
  const socket: Socket = connect({ host: url.hostname, port: Number(url.port || 1883), noDelay: true })
  const started = Date.now()
  let sent = 0
  let acknowledged = 0
  let connected = false
  let scheduled = false
  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => reject(error)
    socket.once('error', fail)
    socket.once('close', () =>
      acknowledged === options.count
        ? resolve()
        : fail(new Error(`connection closed after ${acknowledged} of ${options.count} acknowledgements`)),
    )
    const pump = () => {
      scheduled = false
      if (!connected) return
      const frames: Buffer[] = []
      while (sent < options.count && sent - acknowledged < options.window && frames.length < 256) {
        if (options.rate > 0 && started + (sent * 1000) / options.rate > Date.now()) break
        frames.push(publishFrame(options.topicOf(sent), options.payloadOf(sent), (sent % 65_535) + 1))
        sent += 1
      }
      if (frames.length > 0) socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames))
      if (sent < options.count && sent - acknowledged < options.window) {
        const due = options.rate > 0 ? Math.max(0, started + (sent * 1000) / options.rate - Date.now()) : 0
        scheduled = true
        setTimeout(pump, due)
      }
    }
    socket.on(
      'data',
      packetReader((type, body) => {
        if (type === 2) {
          if (body[1] !== 0) return fail(new Error(`broker refused the connection: CONNACK code ${body[1]}`))
          connected = true
          return pump()
        }
        if (type !== 4) return fail(new Error(`unexpected MQTT packet type ${type}`))
        acknowledged += 1
        if (acknowledged === options.count)
          socket.end(Buffer.from([0xe0, 0])) // DISCONNECT
        else if (!scheduled && sent < options.count && sent - acknowledged <= options.window - 256) pump()
      }),
    )
    socket.write(connectFrame(options.clientId))
  })
}
