import { networkInterfaces } from 'node:os'

/** The first non-internal IPv4 of this host (what a remote Nacos can reach), else loopback. */
export function externalIPv4 (): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return '127.0.0.1'
}

export function isLoopback (host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1'
}
