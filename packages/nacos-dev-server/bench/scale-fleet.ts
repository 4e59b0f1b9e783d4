// The fleet of the scale benchmarks, shared by the load generator and the processes that read it:
// `svc-<s>` with `perService` instances each, every instance on its own loopback address (one
// upstream port serves them all), nine in ten in lane v1 and one in ten in v2; and `big`, one
// service of 1,000 instances whose list is pushed whole on every change.
export const BIG = 'big'
export const BIG_SIZE = 1000

export const serviceName = (s: number): string => `svc-${s}`

/** Loopback address of instance `j` of service `s` (`s` < 65,000, `j` < 254). */
export const instanceIp = (s: number, j: number): string => `127.${1 + (s >> 8)}.${s & 255}.${j + 1}`

/** Loopback address of instance `j` of `big` (`j` < 32,512). */
export const bigIp = (j: number): string => `127.250.${j >> 7}.${(j & 127) + 1}`

export const laneOf = (j: number): string => (j % 10 === 9 ? 'v2' : 'v1')
