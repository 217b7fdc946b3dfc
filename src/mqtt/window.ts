/**
 * What raises a broker's per-connection window, and the queue behind it,
 * for the brokers our users run. Used in the ingestor's warning and kept in
 * step with the README's delivery section.
 */
export function brokerWindowAdvice(protocolVersion: 4 | 5): string {
  const mosquitto =
    protocolVersion === 4
      ? 'Mosquitto: max_inflight_messages (default 20, for 3.1.1 clients; MQTT 5 clients get their Receive Maximum) ' +
        'and max_queued_messages (default 1000)'
      : 'Mosquitto: max_queued_messages (default 1000)'
  return [
    `Raise the broker's limits: ${mosquitto}`,
    'EMQX: mqtt.max_inflight (default 32) and mqtt.max_mqueue_len (default 1000)',
    'HiveMQ: its in-flight window (50) is fixed; raise <queued-messages><max-queue-size> (default 1000)',
    'or give the ingestor more connections (option connections, with a broker that supports shared subscriptions).',
  ].join('; ')
}
