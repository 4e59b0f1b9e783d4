#!/usr/bin/env node
// flowtag-nacos-dev: run the embedded Nacos-compatible server until SIGINT/SIGTERM.
import { parseArgs } from 'node:util'
import { startNacosDevServer, type DevServerOptions } from './index.ts'

const usage = [
  'usage: flowtag-nacos-dev [--port 8848] [--host 127.0.0.1] [--compat 2.5|3.1|3.3] [--grpc-port <n> | --no-grpc]',
  '                         [--data-file path] [--username u --password p | --no-auth] [--verbose]',
  '  --compat     the Nacos generation to behave as (default 3.1; 3.3 turns client auth on: user nacos, password nacos)',
  '  --grpc-port  the gRPC port (default: HTTP port + 1000); --no-grpc serves HTTP only'
].join('\n')

let values
try {
  ;({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '8848' },
      host: { type: 'string', default: '127.0.0.1' },
      compat: { type: 'string' },
      'grpc-port': { type: 'string' },
      'no-grpc': { type: 'boolean', default: false },
      'no-auth': { type: 'boolean', default: false },
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

if (values['no-grpc'] && values['grpc-port'] !== undefined) {
  console.error(`--grpc-port and --no-grpc exclude each other\n${usage}`)
  process.exit(2)
}
const options: DevServerOptions = { port: Number(values.port), host: values.host }
// Unchecked here: the server's option schema refuses a bad value with a coded error naming it.
if (values.compat !== undefined) options.compat = values.compat as DevServerOptions['compat']
if (values['grpc-port'] !== undefined) options.grpcPort = Number(values['grpc-port'])
if (values['no-grpc']) options.grpc = false
if (values['no-auth']) options.auth = false
if (values['data-file'] !== undefined) options.dataFile = values['data-file']
if (values.username !== undefined || values.password !== undefined) {
  options.auth = { username: values.username ?? '', password: values.password ?? '' }
}
if (values.verbose) options.log = (line) => console.error(line)

try {
  const server = await startNacosDevServer(options)
  const grpc = server.grpcPort === undefined ? 'no gRPC' : `gRPC :${server.grpcPort}`
  const auth = server.auth === undefined ? 'auth off' : `auth on (user ${server.auth.username}${options.auth === undefined ? `, password ${server.auth.password}` : ''})`
  console.log(`nacos dev server (as Nacos ${server.compat}) listening on ${server.url}/nacos, ${grpc}, ${auth} (NACOS_SERVER_ADDR=${server.address})`)
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
