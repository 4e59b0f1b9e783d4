import t from 'tap'
import { compileCidrs, matchIp, parseCidr } from '../src/ip.ts'

t.test('parses valid v4 and v6 blocks and bare addresses', async (t) => {
  for (const s of ['10.0.0.0/8', '0.0.0.0/0', '192.168.1.7', '1.2.3.4/32', '::/0', '::1', 'fd00::/8', '2001:db8::/32',
    '1:2:3:4:5:6:7:8', '::ffff:10.0.0.0/104', '1::', '1:2::3:4/64', 'FE80::ABCD/10']) {
    t.ok(parseCidr(s), s)
  }
})

t.test('refuses malformed blocks', async (t) => {
  for (const s of ['', '10.0.0.0/33', '10.0.0/8', '10.0.0.0.0', '256.1.1.1', '01.2.3.4', '1.2.3.4/', '1.2.3.4/-1', '1.2.3.4/08',
    '::/129', '1:2:3:4:5:6:7:8:9', '1::2::3', ':1', '1:', '12345::', 'g::1', 'fe80::1%eth0', '1.2.3.4 /8', 'x', '1:2:3:4:5:6:7::8']) {
    t.equal(parseCidr(s), undefined, JSON.stringify(s))
  }
})

t.test('matches v4, v6 and v4-mapped v6 clients', async (t) => {
  const cidrs = compileCidrs(['10.0.0.0/8', '2001:db8::/32', '192.168.0.1'])
  t.equal(matchIp(cidrs, '10.200.3.4'), 0)
  t.equal(matchIp(cidrs, '::ffff:10.200.3.4'), 0, 'dual-stack socket form')
  t.equal(matchIp(cidrs, '11.0.0.1'), -1)
  t.equal(matchIp(cidrs, '2001:db8:ffff::1'), 1)
  t.equal(matchIp(cidrs, '2001:db9::1'), -1)
  t.equal(matchIp(cidrs, '192.168.0.1'), 2)
  t.equal(matchIp(cidrs, '192.168.0.2'), -1)
  t.equal(matchIp(cidrs, 'fe80::1%eth0'), -1)
  t.equal(matchIp(cidrs, 'garbage'), -1)
  t.equal(matchIp(cidrs, undefined), -1)
  t.equal(matchIp(compileCidrs(['::/0']), '1.2.3.4'), 0, '::/0 covers mapped v4 too')
  t.equal(matchIp(compileCidrs(['0.0.0.0/0']), '2001:db8::1'), -1, 'a v4 block never covers a real v6 address')
  t.throws(() => compileCidrs(['10.0.0.0/8', 'nope']), { code: 'FLOWTAG_RULES_BAD_OPTION', path: ['cidrs', 1], message: /cidrs\[1\]/ })
})

t.test('agrees with node:net BlockList on random v4 and v6 blocks and addresses', async (t) => {
  const { BlockList } = await import('node:net')
  const fc = (await import('fast-check')).default
  fc.assert(fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (net, bits, addr) => {
    const list = new BlockList()
    list.addSubnet(net, bits, 'ipv4')
    return (matchIp(compileCidrs([`${net}/${bits}`]), addr) === 0) === list.check(addr, 'ipv4')
  }), { numRuns: 3000 })
  fc.assert(fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.ipV6(), (net, bits, addr) => {
    const list = new BlockList()
    list.addSubnet(net, bits, 'ipv6')
    return (matchIp(compileCidrs([`${net}/${bits}`]), addr) === 0) === list.check(addr, 'ipv6')
  }), { numRuns: 3000 })
  // near misses: the block's own address with its last prefix bit flipped is outside
  fc.assert(fc.property(fc.ipV4(), fc.integer({ min: 1, max: 31 }), (net, bits) => {
    const c = compileCidrs([`${net}/${bits}`])
    const n = net.split('.').reduce((a, o) => a * 256 + Number(o), 0)
    const flipped = (n ^ (1 << (32 - bits))) >>> 0
    const text = [24, 16, 8, 0].map((s) => (flipped >>> s) & 255).join('.')
    return matchIp(c, net) === 0 && matchIp(c, text) === -1
  }), { numRuns: 2000 })
  t.pass('matches the reference')
})
