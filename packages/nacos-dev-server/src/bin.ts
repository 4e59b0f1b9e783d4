#!/usr/bin/env node
// flowtag-nacos-dev: run the embedded Nacos-compatible server until SIGINT/SIGTERM.
import { parseArgs } from 'node:util'
import { startNacosDevServer, type DevServerOptions } from './index.ts'

const usage = 'usage: flowtag-nacos-dev [--port 8848] [--host 127.0.0.1] [--data-file path] [--username u --password p]'

let values
try {
  ;({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '8848' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-file': { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  }))
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`)
  process.exit(2)
}
if (values.help) {
  console.log(usage)
  process.exit(0)
}

const options: DevServerOptions = { port: Number(values.port), host: values.host }
if (values['data-file'] !== undefined) options.dataFile = values['data-file']
if (values.username !== undefined || values.password !== undefined) {
  options.auth = { username: values.username ?? '', password: values.password ?? '' }
}
if (values.verbose) options.log = (line) => console.error(line)

try {
  const server = await startNacosDevServer(options)
  console.log(`nacos dev server listening on ${server.url}/nacos${server.grpcPort === undefined ? '' : ` and gRPC :${server.grpcPort}`} (NACOS_SERVER_ADDR=${server.address})`)
  const stop = (signal: string) => {
    console.log(`${signal}: stopping`)
    server.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (err) {
  const e = err as Error & { code?: string }
  console.error(`flowtag-nacos-dev: ${e.code ?? 'error'}: ${e.message}`)
  process.exit(1)
}
