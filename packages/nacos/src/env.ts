// Credentials from the environment, for the presets and CLIs that build a client for the user.
import { badOption } from './errors.ts'
import type { NacosClientOptions } from './options.ts'

export interface NacosCredentials {
  username?: string
  password?: string
  accessKey?: string
  secretKey?: string
}

const PAIRS = [
  ['username', 'password', 'NACOS_USERNAME', 'NACOS_PASSWORD'],
  ['accessKey', 'secretKey', 'NACOS_ACCESS_KEY', 'NACOS_SECRET_KEY']
] as const

/**
 * The Nacos credentials the environment gives: `NACOS_USERNAME` + `NACOS_PASSWORD` (Nacos's
 * login) and `NACOS_ACCESS_KEY` + `NACOS_SECRET_KEY` (request signing), each pair only when it is
 * whole; empty values count as unset. Pairs already in `given` (client options) win whole: the
 * environment never completes half of an option pair.
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` naming the variable when only half of a pair is set
 */
export function credentialsFromEnv (env: Record<string, string | undefined> = process.env, given: NacosCredentials = {}): NacosCredentials {
  const out: NacosCredentials = {}
  for (const [user, secret, userVar, secretVar] of PAIRS) {
    if (given[user] !== undefined || given[secret] !== undefined) continue
    const u = nonEmpty(env[userVar])
    const s = nonEmpty(env[secretVar])
    if (u === undefined && s === undefined) continue
    if (u === undefined || s === undefined) {
      const missing = u === undefined ? userVar : secretVar
      throw badOption(missing, `${missing} is not set while ${u === undefined ? secretVar : userVar} is: Nacos credentials go in pairs`)
    }
    out[user] = u
    out[secret] = s
  }
  return out
}

function nonEmpty (v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v
}

/** What a preset knows of the application: its service name, version (lane) and environment. */
export interface PresetApp {
  service?: string | undefined
  version?: string | undefined
  env?: string | undefined
}

/**
 * Client options as a preset builds them for the user: credentials from the environment
 * (`credentialsFromEnv`) where the options give none, `appName` = the service, and the connection
 * labels `version` and `env` (a Nacos 3.2+ server can match config gray releases on them) under
 * the options' own `labels`.
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` naming the variable when only half of a pair is set
 */
export function presetClientOptions (options: NacosClientOptions, app: PresetApp = {}, env: Record<string, string | undefined> = process.env): NacosClientOptions {
  const labels: Record<string, string> = {}
  if (app.version !== undefined) labels.version = app.version
  if (app.env !== undefined) labels.env = app.env
  return {
    ...options,
    ...credentialsFromEnv(env, options),
    ...(options.appName === undefined && app.service !== undefined ? { appName: app.service } : {}),
    labels: { ...labels, ...options.labels }
  }
}
