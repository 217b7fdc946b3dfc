/**
 * How long to wait before trying again: doubling from `initialMs` up to
 * `maxMs`. With `jitter: 'full'` the wait is drawn uniformly below that
 * ceiling, so many clients failing together do not retry together (the AWS
 * "full jitter" policy); `'none'` waits the ceiling itself.
 */
export interface BackoffPolicy {
  readonly initialMs: number
  readonly maxMs: number
  readonly jitter: 'full' | 'none'
}

/** The wait before retry number `attempt` (1 for the first retry), in whole milliseconds. */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(policy.jitter === 'full' ? Math.random() * ceiling : ceiling)
}
