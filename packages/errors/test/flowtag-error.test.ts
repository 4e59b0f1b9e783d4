import t from 'tap'
import { z } from 'zod'
import { FlowtagError, fieldOf, isFlowtagError, optionErrorMessage } from '../src/index.ts'

class AreaError extends FlowtagError {
  static override readonly brand: string = 'flowtag.area.error'
}

t.test('code, name, statusCode and cause', async (t) => {
  const cause = new Error('root')
  const err = new AreaError('FLOWTAG_AREA_WHAT', 'went wrong', { cause, statusCode: 503 })
  t.equal(err.code, 'FLOWTAG_AREA_WHAT')
  t.equal(err.name, 'AreaError')
  t.equal(err.statusCode, 503)
  t.equal(err.cause, cause)
  t.equal(new FlowtagError('X', 'y').statusCode, undefined)
})

t.test('instanceof holds across a second copy of the class (brand, not identity)', async (t) => {
  // Another install of the same package: a distinct class object with the same brand.
  const brands = Symbol.for('flowtag.error.brands')
  const foreign = { [brands]: ['flowtag.area.error', 'flowtag.error'], code: 'FLOWTAG_AREA_WHAT' }
  t.ok(foreign instanceof FlowtagError)
  t.ok(foreign instanceof AreaError)
  t.ok(isFlowtagError(foreign, 'FLOWTAG_AREA_WHAT'))
  t.notOk(isFlowtagError(foreign, 'FLOWTAG_AREA_OTHER'))
})

t.test('a sibling class is not an instance of another subclass', async (t) => {
  class OtherError extends FlowtagError {
    static override readonly brand: string = 'flowtag.other.error'
  }
  const err = new OtherError('FLOWTAG_OTHER_X', 'x')
  t.ok(err instanceof FlowtagError)
  t.ok(err instanceof OtherError)
  t.notOk(err instanceof AreaError)
  t.notOk(new Error('plain') instanceof FlowtagError)
  t.notOk(null as unknown instanceof FlowtagError)
  t.notOk(isFlowtagError('FLOWTAG_X'))
})

t.test('one bad-option message from a zod error, naming the field', async (t) => {
  const schema = z.strictObject({ port: z.number(), nested: z.strictObject({ ms: z.number().int() }) })
  const wrongType = schema.safeParse({ port: 'x', nested: { ms: 1 } })
  t.equal(wrongType.success, false)
  if (wrongType.success) return
  t.match(optionErrorMessage('@flowtag/area', wrongType.error), /^@flowtag\/area: invalid option "port": /)
  const unknown = schema.safeParse({ port: 1, nested: { ms: 1, typo: true } })
  if (unknown.success) return t.fail('unknown key accepted')
  t.equal(fieldOf(unknown.error), 'nested.typo')
  t.equal(fieldOf(unknown.error, 'nacos'), 'nacos.nested.typo')
  t.equal(fieldOf({ issues: [] }), 'options')
})
