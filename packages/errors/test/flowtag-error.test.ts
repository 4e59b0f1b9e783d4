import t from 'tap'
import { z } from 'zod'
import { FlowTagError, fieldOf, isFlowTagError, optionErrorMessage } from '../src/index.ts'
import * as errors from '../src/index.ts'

class AreaError extends FlowTagError {
  static override readonly brand: string = 'flowtag.area.error'
}

t.test('code, name, statusCode and cause', async (t) => {
  const cause = new Error('root')
  const err = new AreaError('FLOWTAG_AREA_WHAT', 'went wrong', { cause, statusCode: 503 })
  t.equal(err.code, 'FLOWTAG_AREA_WHAT')
  t.equal(err.name, 'AreaError')
  t.equal(err.statusCode, 503)
  t.equal(err.cause, cause)
  t.equal(new FlowTagError('X', 'y').statusCode, undefined)
})

t.test('instanceof holds across a second copy of the class (brand, not identity)', async (t) => {
  // Another install of the same package: a distinct class object with the same brand.
  const brands = Symbol.for('flowtag.error.brands')
  const foreign = { [brands]: ['flowtag.area.error', 'flowtag.error'], code: 'FLOWTAG_AREA_WHAT' }
  t.ok(foreign instanceof FlowTagError)
  t.ok(foreign instanceof AreaError)
  t.ok(isFlowTagError(foreign, 'FLOWTAG_AREA_WHAT'))
  t.notOk(isFlowTagError(foreign, 'FLOWTAG_AREA_OTHER'))
})

t.test('a sibling class is not an instance of another subclass', async (t) => {
  class OtherError extends FlowTagError {
    static override readonly brand: string = 'flowtag.other.error'
  }
  const err = new OtherError('FLOWTAG_OTHER_X', 'x')
  t.ok(err instanceof FlowTagError)
  t.ok(err instanceof OtherError)
  t.notOk(err instanceof AreaError)
  t.notOk(new Error('plain') instanceof FlowTagError)
  t.notOk(null as unknown instanceof FlowTagError)
  t.notOk(isFlowTagError('FLOWTAG_X'))
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

t.test('the old casing (FlowtagError, isFlowtagError) is the same class and function, deprecated', async (t) => {
  const { FlowtagError: Old, isFlowtagError: isOld } = errors
  t.equal(Old, FlowTagError)
  t.equal(isOld, isFlowTagError)
  class OldStyle extends Old {
    static override readonly brand: string = 'flowtag.old-style.error'
  }
  const fromOld = new OldStyle('FLOWTAG_OLD_X', 'x')
  t.ok(fromOld instanceof FlowTagError)
  t.ok(new FlowTagError('FLOWTAG_X', 'x') instanceof Old)
  t.ok(isFlowTagError(fromOld, 'FLOWTAG_OLD_X'))
  t.equal(new Old('FLOWTAG_X', 'x').name, 'FlowTagError')
})
