import t from 'tap'
import { z } from 'zod'
import { FlowTagError, badOption, describeBadOption, fieldOf, optionErrorMessage } from '../src/index.ts'

const registration = z.strictObject({ drainMs: z.number().int(), weight: z.number().optional(), metadata: z.record(z.string(), z.string()).optional() })
const schema = z.strictObject({
  service: z.string(),
  registration: z.union([z.literal(false), registration]).prefault({ drainMs: 1 }),
  lanes: z.record(z.string(), z.strictObject({ stable: z.string(), strict: z.boolean().optional() })).optional(),
  list: z.array(z.strictObject({ ip: z.string() })).optional()
})
const refuse = (input: unknown) => {
  const r = schema.safeParse(input)
  if (r.success) throw new Error('accepted')
  return r.error
}

t.test('a union-typed option names the deepest bad field, not the union', async (t) => {
  const bad = describeBadOption('@flowtag/x', refuse({ service: 's', registration: { drainMs: '2000' } }), { schema })
  t.equal(bad.field, 'registration.drainMs')
  t.same(bad.path, ['registration', 'drainMs'])
  t.equal(bad.problem, 'expected number, received string')
  t.equal(bad.message, '@flowtag/x: invalid option "registration.drainMs": expected number, received string')
  t.equal(optionErrorMessage('@flowtag/x', refuse({ service: 's', registration: { drainMs: '2000' } })), bad.message)
  t.equal(fieldOf(refuse({ service: 's', registration: { drainMs: '2000' } })), 'registration.drainMs')
  // Neither branch deeper than the union itself: the union is the field.
  t.equal(describeBadOption('p', refuse({ service: 's', registration: 7 })).field, 'registration')
  const own = z.object({ signals: z.union([z.literal(false), z.array(z.string())], { message: 'false, or a list of names' }) })
  const r = own.safeParse({ signals: 'SIGTERM' })
  t.equal(r.success ? '' : describeBadOption('p', r.error).problem, 'false, or a list of names', 'no branch deeper: the union\'s own message')
})

t.test('an unknown key is named itself, with the closest valid key and the valid keys', async (t) => {
  const top = describeBadOption('@flowtag/x', refuse({ servce: 's' }), { schema })
  t.equal(top.field, 'servce')
  t.equal(top.suggestion, 'service')
  t.same(top.validKeys, ['service', 'registration', 'lanes', 'list'])
  t.equal(top.message, '@flowtag/x: invalid option "servce": unknown key (did you mean "service"?); valid keys: service, registration, lanes, list')

  const inUnion = describeBadOption('@flowtag/x', refuse({ service: 's', registration: { drainMS: 5 } }), { schema })
  t.equal(inUnion.field, 'registration.drainMS')
  t.equal(inUnion.suggestion, 'drainMs')
  t.same(inUnion.validKeys, ['drainMs', 'weight', 'metadata'])

  const inRecord = describeBadOption('p', refuse({ service: 's', lanes: { 'a.b': { stable: 'v1', strikt: true } } }), { schema, prefix: 'routing' })
  t.same(inRecord.path, ['routing', 'lanes', 'a.b', 'strikt'], 'a record key with a dot stays one segment')
  t.equal(inRecord.suggestion, 'strict')

  const inArray = describeBadOption('p', refuse({ service: 's', list: [{ ip: 'x' }, { ip: 'y', zzz: 1 }] }), { schema })
  t.same(inArray.path, ['list', 1, 'zzz'])
  t.equal(inArray.suggestion, undefined, 'nothing close')
  t.same(inArray.validKeys, ['ip'])

  const noSchema = describeBadOption('p', refuse({ servce: 's' }))
  t.equal(noSchema.problem, 'unknown key')
  t.equal(noSchema.validKeys, undefined)
})

t.test('the error carries the field as data', async (t) => {
  const bad = describeBadOption('@flowtag/x', refuse({ service: 's', registration: { drainMs: '2000' } }), { schema, prefix: 'nacos' })
  const err = new FlowTagError('FLOWTAG_X_BAD_OPTION', bad.message, bad)
  t.equal(err.field, 'nacos.registration.drainMs')
  t.same(err.path, ['nacos', 'registration', 'drainMs'])
  t.equal(err.problem, 'expected number, received string')
  const byHand = badOption('@flowtag/x', 'outlier.maxEjectionMs', 'must be >= outlier.baseEjectionMs')
  const err2 = new FlowTagError('FLOWTAG_X_BAD_OPTION', byHand.message, byHand)
  t.same(err2.path, ['outlier', 'maxEjectionMs'])
  t.equal(err2.message, '@flowtag/x: invalid option "outlier.maxEjectionMs": must be >= outlier.baseEjectionMs')
  t.equal(new FlowTagError('X', 'y').field, undefined)
  t.equal(describeBadOption('p', { issues: [] }).field, 'options')
})
