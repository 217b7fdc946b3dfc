export { createMqttIngestor, type IngestorStats, type MqttIngestor, type MqttIngestorOptions } from './ingestor.js'
export type { ConnectionStats } from './connection.js'
export { decodeJson, type PayloadDecoder } from './decode.js'
export { prefixLayout, type TopicLayout, type TopicRoute } from './topics.js'
