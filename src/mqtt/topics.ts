import { isId } from '../repositories/shared/fields.js'

/** What a topic says: whose it is, and whether it carries telemetry or a status. */
export interface TopicRoute {
  readonly deviceId: string
  readonly channel: 'telemetry' | 'status'
}

/** The topic layout: `<prefix>/<deviceId>/telemetry` and `<prefix>/<deviceId>/status`. */
export interface TopicLayout {
  /** The subscriptions, without a share-group prefix. */
  readonly filters: readonly string[]
  route(topic: string): TopicRoute | undefined
}

/**
 * The default layout under `prefix` (default `plantops`). The device id is
 * the topic segment, and only that: the topic is the identity.
 */
export function prefixLayout(prefix: string): TopicLayout {
  const depth = prefix.split('/').length
  return {
    filters: [`${prefix}/+/telemetry`, `${prefix}/+/status`],
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
