import { machineBroker } from '../support/brokers.js'
import { loadSuites } from './suites/load.js'

loadSuites(machineBroker)
