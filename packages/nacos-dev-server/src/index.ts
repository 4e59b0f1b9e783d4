export { startNacosDevServer, type NacosDevServer } from './server.ts'
export type { CompatMode, DevServerOptions } from './options.ts'
export { DevServerError, errorCodes, type DevServerErrorCode } from './errors.ts'
