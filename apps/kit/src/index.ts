export { closeOnSignals, main, nacosOptions, trustAndCache, type BuildApp } from './service.ts'
export { readEnv, serviceEnvSchema, EnvError, type ServiceEnv } from './env.ts'
export { callJson } from './call.ts'
export { HEALTH_PATH, READY_PATH, METRICS_PATH } from './paths.ts'
