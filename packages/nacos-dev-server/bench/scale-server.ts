// The dev server for the scale benchmarks, in its own process: a free port, gRPC on, pushes sent
// after `delayMs` (argv[2], default 0: every change pushed at once, so rates and latencies are the
// server's and not its coalescing delay). Prints NACOS_SERVER_ADDR=host:port when listening.
import { startNacosDevServer } from '../src/index.ts'

const server = await startNacosDevServer({ port: 0, push: { delayMs: Number(process.argv[2] ?? 0) } })
console.log(`NACOS_SERVER_ADDR=${server.address}`)
process.once('SIGTERM', () => { server.close().then(() => process.exit(0), () => process.exit(1)) })
