import { isId } from '../schema/fields.js'

/**
 * What a topic says: whose it is, and whether it carries telemetry or a status.
 *
 * @example
 * ```ts
 * import type { TopicRoute } from 'plantops-db/mqtt'
 * const route: TopicRoute = { deviceId: 'dev_1', channel: 'telemetry' }
 * ```
 */
export interface TopicRoute {
  /** The device the message belongs to: the only source of identity. */
  readonly deviceId: string
  /** Readings, or an `online` / `offline` status. */
  readonly channel: 'telemetry' | 'status'
}

/**
 * A topic layout: what to subscribe to, and how to read a topic.
 *
 * @example
 * ```ts
 * import type { TopicLayout } from 'plantops-db/mqtt'
 * // greenhouse/<site>/<deviceId>/<telemetry|status>
 * const topics: TopicLayout = {
 *   filters: ['greenhouse/+/+/telemetry', 'greenhouse/+/+/status'],
 *   route: (topic) => {
 *     const [, , deviceId, channel] = topic.split('/')
 *     return deviceId && (channel === 'telemetry' || channel === 'status') ? { deviceId, channel } : undefined
 *   },
 * }
 * ```
 */
export interface TopicLayout {
  /** The subscriptions, without a share-group prefix. */
  readonly filters: readonly string[]
  /** Whose message this is, or `undefined` to dead-letter it as `unknown_topic`. */
  route(topic: string): TopicRoute | undefined
}

/**
 * The default layout under `prefix` (default `plantops`). The device id is
 * the topic segment, and only that: the topic is the identity. It subscribes
 * to everything under the prefix (and under `/<prefix>`, a common slip), so
 * a message on a topic that does not fit reaches the ingestor and is
 * dead-lettered as `unknown_topic` instead of never being seen.
 *
 * @example
 * ```ts
 * import { prefixLayout } from 'plantops-db/mqtt'
 * prefixLayout('farm').route('farm/dev_1/status') // { deviceId: 'dev_1', channel: 'status' }
 * ```
 */
export function prefixLayout(prefix: string): TopicLayout {
  const depth = prefix.split('/').length
  return {
    filters: [`${prefix}/#`, `/${prefix}/#`],
    route(topic) {
      const parts = topic.split('/')
      if (parts.length !== depth + 2 || parts.slice(0, depth).join('/') !== prefix) return undefined
      const deviceId = parts[depth]!
      const channel = parts[depth + 1]
      if (!isId(deviceId) || (channel !== 'telemetry' && channel !== 'status')) return undefined
      return { deviceId, channel }
    },
  }
}

/** Subscriptions with `$share/<group>/` in front, so a group of ingestors splits the stream. */
export function sharedFilters(filters: readonly string[], shareGroup: string | undefined): string[] {
  return filters.map((filter) => (shareGroup ? `$share/${shareGroup}/${filter}` : filter))
}

/**
 * Where an ingestor with several connections publishes its order markers:
 * outside every device's topics, one topic per ingestor (by client id).
 */
export function markerTopic(clientId: string): string {
  return `plantops-ingestors/${clientId.replace(/[/#+]/g, '_')}/order`
}
