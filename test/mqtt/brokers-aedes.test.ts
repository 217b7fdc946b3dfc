import { aedesBroker } from '../support/brokers.js'
import { deliverySuites } from './suites/delivery.js'
import { loadSuites } from './suites/load.js'

loadSuites(aedesBroker)
deliverySuites(aedesBroker)
