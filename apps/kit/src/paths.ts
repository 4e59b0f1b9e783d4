/** Probe paths every demo service serves (the registry plugin's), used by the k8s and compose files. */
export const HEALTH_PATH = '/health'
export const READY_PATH = '/ready'
export const METRICS_PATH = '/metrics'
