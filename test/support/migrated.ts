import { afterAll, beforeAll } from 'vitest'
import { createRepositories, migrateToLatest, type Repositories } from '../../src/index.js'
import type { Backend, TestDatabase } from './backends.js'

/** Few iterations keep provisioning fast in tests; the default is tested on its own. */
export const TEST_PASSWORD_ITERATIONS = 1_000

export interface MigratedDatabase {
  readonly t: TestDatabase
  readonly repos: Repositories
}

/**
 * One migrated database for a whole describe block; tests keep apart by
 * using ids of their own (see `unique`).
 */
export function useMigratedDatabase(backend: Backend): MigratedDatabase {
  const state = {} as { t: TestDatabase; repos: Repositories }
  beforeAll(async () => {
    state.t = await backend.open()
    await migrateToLatest(state.t.db, { logger: false })
    state.repos = createRepositories(state.t.db, { passwordIterations: TEST_PASSWORD_ITERATIONS })
  })
  afterAll(async () => {
    await state.t?.close()
  })
  return {
    get t() {
      return state.t
    },
    get repos() {
      return state.repos
    },
  }
}

let counter = 0
/** An id no other test uses, readable in a failure message. */
export function unique(prefix: string): string {
  counter += 1
  return `${prefix}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`
}

/** A random, valid, unique MAC address. */
export function randomMac(): string {
  const bytes = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256))
  bytes[0] = (bytes[0]! & 0xfe) | 0x02 // locally administered, unicast
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':')
}

/** Resolves with the error a promise rejects with; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected the call to fail, but it succeeded')
}
