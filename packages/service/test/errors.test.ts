// A composed package's bad-option error is re-worded as ours, the field named as the user wrote it
// (from the error's data: `field`, `path`, `problem`, never parsed out of its message).
import { FlowTagError } from '@flowtag/errors'
import { NacosError } from '@flowtag/nacos'
import t from 'tap'
import { asServiceOption, errorCodes } from '../src/errors.ts'

t.test('a bad option of a composed package names the field under our option', async (t) => {
  const inner = new NacosError('FLOWTAG_NACOS_BAD_OPTION', '@flowtag/nacos: invalid option "serverAddr": "x" is not host:port', { field: 'serverAddr', problem: '"x" is not host:port' })
  const ours = asServiceOption(inner, 'nacos')
  t.ok(ours instanceof FlowTagError)
  t.match(ours, { code: errorCodes.BAD_OPTION, message: '@flowtag/service: invalid option "nacos.serverAddr": "x" is not host:port', cause: inner, field: 'nacos.serverAddr', path: ['nacos', 'serverAddr'], problem: '"x" is not host:port' })
  t.match(asServiceOption(inner, ''), { message: '@flowtag/service: invalid option "serverAddr": "x" is not host:port' }, 'a top-level option keeps its name')
})

t.test('anything else passes through as it is', async (t) => {
  const unreachable = new NacosError('FLOWTAG_NACOS_UNREACHABLE', 'no Nacos server reachable')
  t.equal(asServiceOption(unreachable, 'nacos'), unreachable, 'not a bad option')
  const unworded = new NacosError('FLOWTAG_NACOS_BAD_OPTION', 'something about the options')
  t.equal(asServiceOption(unworded, 'nacos'), unworded, 'a bad option that does not carry its field')
  t.equal(asServiceOption('a string', 'nacos'), 'a string')
  t.equal(asServiceOption(null, 'nacos'), null)
})
