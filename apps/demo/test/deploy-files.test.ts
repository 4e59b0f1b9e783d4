// The deployment files must agree with the apps: ports, probe paths, environment names.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { HEALTH_PATH, READY_PATH, serviceEnvSchema } from '@flowtag/demo-kit'
import { validateRuleSet } from '@flowtag/rules'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { canaryRuleSet } from '../src/rulesets.ts'

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url))
const read = (p: string) => readFileSync(root(p), 'utf8')
const envNames = new Set(Object.keys(serviceEnvSchema.shape))
const APPS = ['gateway', 'order-service', 'user-service', 'inventory-service']

interface Container {
  name: string
  image: string
  ports: Array<{ name: string; containerPort: number }>
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }>
  livenessProbe: { httpGet: { path: string; port: string } }
  readinessProbe: { httpGet: { path: string; port: string } }
}

t.test('k8s Deployments: probes on the apps\' real paths and port, known variables, version per Deployment', async (t) => {
  const docs = parseAllDocuments(read('k8s/base/apps.yaml')).map((d) => d.toJS())
  const deployments = docs.filter((d) => d.kind === 'Deployment')
  t.equal(deployments.length, 7)
  const seen = new Set<string>()
  for (const d of deployments) {
    const c = d.spec.template.spec.containers[0] as Container
    const app = d.metadata.labels['app.kubernetes.io/name']
    const version = d.metadata.labels['app.kubernetes.io/version']
    t.ok(APPS.includes(app), `${d.metadata.name} runs a demo app`)
    t.same(d.spec.selector.matchLabels, { 'app.kubernetes.io/name': app, 'app.kubernetes.io/version': version })
    t.equal(c.livenessProbe.httpGet.path, HEALTH_PATH)
    t.equal(c.readinessProbe.httpGet.path, READY_PATH)
    const port = c.ports.find((p) => p.name === c.livenessProbe.httpGet.port)
    t.equal(port?.containerPort, Number(c.env.find((e) => e.name === 'PORT')?.value), 'probe port is the port the app listens on')
    for (const e of c.env) t.ok(envNames.has(e.name), `${d.metadata.name}: ${e.name} is read by the apps`)
    t.equal(c.env.find((e) => e.name === 'SERVICE_VERSION')?.value, version)
    // the lane-signing key comes from a Secret, never a literal, and is required (no app starts unsigned)
    const key = c.env.find((e) => e.name === 'FLOWTAG_TAG_KEY')
    t.same(key, { name: 'FLOWTAG_TAG_KEY', valueFrom: { secretKeyRef: { name: 'flowtag-tag-key', key: 'FLOWTAG_TAG_KEY' } } }, `${d.metadata.name}: FLOWTAG_TAG_KEY from the Secret`)
    seen.add(`${app}@${version}`)
  }
  t.same([...seen].sort(), ['gateway@v1', 'inventory-service@v1', 'inventory-service@v2', 'order-service@v1', 'order-service@v2', 'user-service@v1', 'user-service@v2'])
})

t.test('k8s overlays: namespaces dev / test / prod, settings the apps read, drain within the grace period', async (t) => {
  const grace = parseAllDocuments(read('k8s/base/apps.yaml')).map((d) => d.toJS()).find((d) => d.kind === 'Deployment').spec.template.spec.terminationGracePeriodSeconds
  for (const env of ['dev', 'test', 'prod']) {
    const k = parse(read(`k8s/overlays/${env}/kustomization.yaml`))
    t.equal(k.namespace, `flowtag-${env}`)
    t.equal(parse(read(`k8s/overlays/${env}/namespace.yaml`)).metadata.name, k.namespace)
    const literals = Object.fromEntries((k.configMapGenerator[0].literals as string[]).map((l) => l.split('=', 2) as [string, string]))
    for (const name of Object.keys(literals)) t.ok(envNames.has(name), `${env}: ${name} is read by the apps`)
    t.equal(literals.DEPLOY_ENV, env)
    // the values themselves must pass the apps' own validation
    const parsed = serviceEnvSchema.safeParse(literals)
    t.ok(parsed.success, `${env} settings validate: ${parsed.success ? '' : parsed.error.message}`)
    t.ok(Number(literals.DRAIN_MS) < grace * 1000, `${env}: drain ends before the pod is killed`)
  }
})

t.test('docker-compose: every app from the Dockerfile, on nacos, with variables and values the apps accept', async (t) => {
  const compose = parse(read('docker/docker-compose.yml')) as { services: Record<string, { build?: { dockerfile: string; args: { APP: string } }; environment?: Record<string, string>; ports?: string[]; depends_on?: Record<string, { condition: string }>; command?: string[]; volumes?: string[] }> }
  const apps = Object.entries(compose.services).filter(([, s]) => s.build !== undefined)
  const served = new Set<string>()
  for (const [name, svc] of apps) {
    t.equal(svc.build!.dockerfile, 'docker/Dockerfile')
    t.ok(APPS.includes(svc.build!.args.APP), `${name} builds a demo app`)
    const env = svc.environment ?? {}
    for (const k of Object.keys(env)) t.ok(envNames.has(k), `${name}: ${k} is read by the apps`)
    // the signing key comes from docker/.env (not committed); compose stops with a message without it
    t.match(env.FLOWTAG_TAG_KEY, /^\$\{FLOWTAG_TAG_KEY:\?[^}]*docker\/\.env[^}]*\}$/, `${name}: FLOWTAG_TAG_KEY from docker/.env, required`)
    const parsed = serviceEnvSchema.safeParse({ ...env, FLOWTAG_TAG_KEY: 'a-key-of-sixteen-or-more' })
    t.ok(parsed.success, `${name}: values validate`)
    t.equal(env.NACOS_SERVER_ADDR, 'nacos:8848')
    t.equal(env.PORT, '8080', 'the port the Dockerfile exposes and probes')
    t.equal(svc.depends_on?.['rules-init']?.condition, 'service_completed_successfully', `${name} starts once the RuleSet is published`)
    served.add(`${svc.build!.args.APP}@${env.SERVICE_VERSION}`)
  }
  t.same([...served].sort(), ['gateway@v1', 'inventory-service@v1', 'inventory-service@v2', 'order-service@v1', 'order-service@v2', 'user-service@v1', 'user-service@v2'])
  t.same(compose.services.gateway?.ports, ['127.0.0.1:8080:8080'])
  // the init job publishes the shipped RuleSet where the apps look for it
  const cmd = compose.services['rules-init']!.command!.join(' ')
  const defaults = serviceEnvSchema.parse({ NACOS_SERVER_ADDR: 'x:1' })
  t.match(cmd, `dataId=${defaults.RULES_DATA_ID}`)
  t.match(cmd, `group=${defaults.RULES_GROUP}`)
  t.match(cmd, 'content@/rules/flowtag-rules.json')
  t.same(compose.services['rules-init']!.volumes, ['./rules:/rules:ro'])
})

t.test('docker/.env.example names every variable compose needs from docker/.env, which git ignores', async (t) => {
  const example = read('docker/.env.example')
  const compose = read('docker/docker-compose.yml')
  const required = [...new Set([...compose.matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]))]
  t.same(required, ['FLOWTAG_TAG_KEY'])
  for (const name of required) t.match(example, new RegExp(`^${name}=$`, 'm'), `${name} in the example, without a value`)
  t.match(read('.gitignore'), /^docker\/\.env$/m, 'docker/.env is never committed')
  t.ok(envNames.has('FLOWTAG_TAG_KEY'), 'the apps read it')
})

t.test('Dockerfile: Node 24, the port and probe the apps use', async (t) => {
  const file = read('docker/Dockerfile')
  t.match(file, /^FROM node:24-slim AS build$/m)
  t.match(file, /ENV NODE_ENV=production HOST=0\.0\.0\.0 PORT=8080/)
  t.match(file, /^EXPOSE 8080$/m)
  t.match(file, new RegExp(`127\\.0\\.0\\.1:'\\+process\\.env\\.PORT\\+'${HEALTH_PATH}`))
  const pnpm = JSON.parse(read('package.json')).packageManager as string
  t.match(file, new RegExp(`npm install -g ${pnpm.replaceAll('.', '\\.')}`), 'the image uses the pinned pnpm')
})

t.test('the RuleSet shipped for compose and k8s is the demo\'s first step and valid', async (t) => {
  const doc = JSON.parse(read('docker/rules/flowtag-rules.json'))
  t.same(doc, canaryRuleSet(1, 10))
  t.doesNotThrow(() => validateRuleSet(doc))
})
