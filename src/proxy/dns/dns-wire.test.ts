import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';

/** dns-packet decodes it, its typings omit it. */
const rcodeOf = (m: unknown): string | undefined => (m as { rcode?: string } | undefined)?.rcode;
import { buildHeaderReply, buildReply, parseAnswer, parseQuery, problemReply, RCODE, type DnsQuery } from './dns-wire.ts';

const q = (name: string, opts: { id?: number; type?: dnsPacket.RecordType; edns?: boolean; flags?: number } = {}): Buffer =>
  dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: opts.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ type: opts.type ?? 'A', name }],
    ...(opts.edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 }] } : {}),
  } as dnsPacket.Packet);

function header(id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): number[] {
  return [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, qd, 0, an, ns >> 8, ns & 0xff, ar >> 8, ar & 0xff];
}

function parsed(buf: Buffer): DnsQuery {
  const p = parseQuery(buf, 'udp');
  assert.ok(p.ok, `expected a query: ${JSON.stringify(p)}`);
  return p.query;
}

describe('parseQuery', () => {
  const rows: Array<{ name: string; msg: Buffer | number[]; transport?: 'udp' | 'tcp'; want: string | { name: string; qtype: number; edns?: number } }> = [
    { name: 'plain A', msg: q('API.GitHub.com'), want: { name: 'api.github.com.', qtype: 1 } },
    { name: 'AAAA with EDNS', msg: q('example.com', { type: 'AAAA', edns: true }), want: { name: 'example.com.', qtype: 28, edns: 1232 } },
    { name: 'root name', msg: q('.'), want: { name: '.', qtype: 1 } },
    { name: 'label with a dot is escaped', msg: [...header(1, 0x100, 1), 7, ...Buffer.from('evil.co'), 3, ...Buffer.from('com'), 0, 0, 1, 0, 1], want: { name: 'evil\\.co.com.', qtype: 1 } },
    { name: 'binary label bytes escaped', msg: [...header(1, 0x100, 1), 2, 0, 0xff, 0, 0, 1, 0, 1], want: { name: '\\000\\255.', qtype: 1 } },
    { name: 'short header', msg: [0, 1, 2], want: 'short-header/drop' },
    { name: 'a response is never answered', msg: [...header(1, 0x8000, 1), 0, 0, 1, 0, 1], want: 'not-a-query/drop' },
    { name: 'opcode UPDATE', msg: [...header(1, 5 << 11, 1), 0, 0, 1, 0, 1], want: 'bad-opcode/notimp' },
    { name: 'no question', msg: header(1, 0x100, 0), want: 'question-count/formerr' },
    { name: 'two questions', msg: [...header(1, 0x100, 2), 0, 0, 1, 0, 1, 0, 0, 1, 0, 1], want: 'question-count/formerr' },
    { name: 'truncated label', msg: [...header(1, 0x100, 1), 10, 97, 98], want: 'truncated/formerr' },
    { name: 'truncated qtype', msg: [...header(1, 0x100, 1), 0, 0], want: 'truncated/formerr' },
    { name: 'pointer to itself', msg: [...header(1, 0x100, 1), 0xc0, 12, 0, 1, 0, 1], want: 'compression-loop/formerr' },
    { name: 'pointer forwards', msg: [...header(1, 0x100, 1), 0xc0, 14, 0, 0, 1, 0, 1], want: 'compression-loop/formerr' },
    { name: 'extended label type', msg: [...header(1, 0x100, 1), 0x41, 0, 0, 1, 0, 1], want: 'bad-name/formerr' },
    { name: 'name over 255 bytes', msg: [...header(1, 0x100, 1), ...Array.from({ length: 5 }, () => [63, ...Buffer.alloc(63, 97)]).flat(), 0, 0, 1, 0, 1], want: 'bad-name/formerr' },
    { name: 'additional count lies', msg: [...header(1, 0x100, 1, 0, 0, 3), 0, 0, 1, 0, 1], want: 'truncated/formerr' },
    { name: 'record count over the limit', msg: [...header(1, 0x100, 1, 0, 0, 600), 0, 0, 1, 0, 1], want: 'too-many-records/formerr' },
    { name: '600 bytes over UDP without EDNS', msg: [...q('a.test'), ...Buffer.alloc(600 - q('a.test').length)], want: 'oversized/formerr' },
    { name: '600 bytes over TCP', msg: [...q('a.test'), ...Buffer.alloc(600 - q('a.test').length)], transport: 'tcp', want: { name: 'a.test.', qtype: 1 } },
    { name: '5000 bytes over UDP', msg: [...q('a.test', { edns: true }), ...Buffer.alloc(5000)], want: 'oversized/formerr' },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const p = parseQuery(Buffer.from(r.msg), r.transport ?? 'udp');
      if (typeof r.want === 'string') {
        assert.ok(!p.ok);
        assert.equal(`${p.reason}/${p.answer}`, r.want);
      } else {
        assert.ok(p.ok, JSON.stringify(p));
        assert.equal(p.query.name, r.want.name);
        assert.equal(p.query.qtype, r.want.qtype);
        assert.equal(p.query.ednsUdpSize, r.want.edns ?? 0);
      }
    });
  }
});

describe('replies', () => {
  test('REFUSED echoes the question byte for byte, same ID, QR+RD+RA', () => {
    const msg = q('Denied.Example.com', { id: 0xbeef });
    const reply = buildReply(msg, parsed(msg), RCODE.REFUSED);
    const d = dnsPacket.decode(reply);
    assert.equal(d.id, 0xbeef);
    assert.equal(d.type, 'response');
    assert.equal(rcodeOf(d), 'REFUSED');
    assert.equal(d.flag_rd, true);
    assert.equal(d.flag_ra, true);
    assert.deepEqual(d.questions, [{ name: 'Denied.Example.com', type: 'A', class: 'IN' }]);
    assert.equal(d.answers?.length, 0);
  });
  test('RD is copied, not invented', () => {
    const msg = q('a.test', { flags: 0 });
    assert.equal(dnsPacket.decode(buildReply(msg, parsed(msg), RCODE.REFUSED)).flag_rd, false);
  });
  test('FORMERR: header only, same ID', () => {
    const msg = Buffer.from([...header(0x4242, 0x100, 2), 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]);
    const p = parseQuery(msg, 'udp');
    assert.ok(!p.ok);
    const r = problemReply(msg, p.answer)!;
    const d = dnsPacket.decode(r);
    assert.equal(d.id, 0x4242);
    assert.equal(rcodeOf(d), 'FORMERR');
    assert.equal(d.questions?.length, 0);
  });
  test('NOTIMP keeps the opcode', () => {
    const r = buildHeaderReply(Buffer.from([...header(7, 4 << 11, 1), 0, 0, 1, 0, 1]), RCODE.NOTIMP)!;
    assert.equal((r[2]! >> 3) & 0xf, 4);
    assert.equal(r[3]! & 0xf, RCODE.NOTIMP);
  });
  test('no reply to a response or a headerless message', () => {
    assert.equal(buildHeaderReply(Buffer.from(header(1, 0x8000, 0)), RCODE.FORMERR), null);
    assert.equal(buildHeaderReply(Buffer.from([1, 2]), RCODE.FORMERR), null);
  });
});

describe('parseAnswer', () => {
  const answer = (query: Buffer, answers: dnsPacket.Answer[], extra: Partial<dnsPacket.Packet> = {}): Buffer => {
    const d = dnsPacket.decode(query);
    return dnsPacket.encode({ type: 'response', id: d.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: d.questions, answers, ...extra } as dnsPacket.Packet);
  };
  const rows: Array<{ name: string; qname: string; answers: dnsPacket.Answer[]; ips: string[]; ttl: number }> = [
    { name: 'A records', qname: 'a.test', answers: [{ type: 'A', name: 'a.test', ttl: 30, data: '1.2.3.4' }, { type: 'A', name: 'a.test', ttl: 20, data: '1.2.3.5' }], ips: ['1.2.3.4', '1.2.3.5'], ttl: 20 },
    {
      name: 'CNAME chain, out of order, min TTL along it',
      qname: 'www.a.test',
      answers: [
        { type: 'A', name: 'edge.cdn.test', ttl: 300, data: '9.9.9.9' },
        { type: 'CNAME', name: 'cdn.a.test', ttl: 15, data: 'edge.cdn.test' },
        { type: 'CNAME', name: 'WWW.a.test', ttl: 60, data: 'cdn.a.test' },
        { type: 'AAAA', name: 'edge.cdn.test', ttl: 300, data: '2001:db8::1' },
      ],
      ips: ['9.9.9.9', '2001:db8::1'],
      ttl: 15,
    },
    { name: 'records of other names are ignored', qname: 'a.test', answers: [{ type: 'A', name: 'evil.test', ttl: 30, data: '6.6.6.6' }], ips: [], ttl: 0 },
    { name: 'CNAME loop terminates', qname: 'x.test', answers: [{ type: 'CNAME', name: 'x.test', ttl: 5, data: 'y.test' }, { type: 'CNAME', name: 'y.test', ttl: 5, data: 'x.test' }], ips: [], ttl: 0 },
    { name: 'AAAA compression of zeros', qname: 'v6.test', answers: [{ type: 'AAAA', name: 'v6.test', ttl: 9, data: '2001:db8:0:0:1:0:0:1' }], ips: ['2001:db8::1:0:0:1'], ttl: 9 },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const query = q(r.qname);
      const a = parseAnswer(answer(query, r.answers), query, parsed(query));
      assert.ok(a.ok, JSON.stringify(a));
      assert.deepEqual(a.answer.ips, r.ips);
      assert.equal(a.answer.ttl, r.ttl);
    });
  }
  test('wrong ID and wrong question are refused', () => {
    const query = q('a.test');
    const other = q('b.test');
    assert.deepEqual(parseAnswer(answer(other, []), query, parsed(query)), { ok: false, reason: 'question-mismatch' });
    const bad = answer(query, []);
    bad[0] = bad[0]! ^ 1;
    assert.deepEqual(parseAnswer(bad, query, parsed(query)), { ok: false, reason: 'id-mismatch' });
  });
  test('case-changed question (0x20) still matches', () => {
    const query = q('a.test');
    const a = answer(q('A.TEST'), [{ type: 'A', name: 'a.test', ttl: 1, data: '1.1.1.1' }]);
    const r = parseAnswer(a, query, parsed(query));
    assert.ok(r.ok);
    assert.deepEqual(r.answer.ips, ['1.1.1.1']);
  });
  test('truncated answer section is malformed', () => {
    const query = q('a.test');
    const a = answer(query, [{ type: 'A', name: 'a.test', ttl: 1, data: '1.1.1.1' }]);
    assert.equal(parseAnswer(a.subarray(0, a.length - 2), query, parsed(query)).ok, false);
  });
});

test('agrees with dns-packet on the question of every query it accepts (random mutations)', () => {
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
  const base = [q('www.example.com'), q('a.b.c.test', { edns: true }), q('x.test', { type: 'AAAA' })];
  for (let i = 0; i < 20_000; i++) {
    const m = Buffer.from(base[rnd(base.length)]!);
    for (let k = rnd(4); k >= 0; k--) m[rnd(m.length)] = rnd(256);
    const p = parseQuery(m, 'udp');
    if (!p.ok) continue;
    let d: dnsPacket.Packet;
    try {
      d = dnsPacket.decode(m);
    } catch {
      continue; // dns-packet is stricter on some rdata; we only forward
    }
    const name = d.questions?.[0]?.name ?? '';
    if (/[^-a-zA-Z0-9_.]/.test(name)) continue; // dns-packet does not escape
    assert.equal(p.query.name, name === '.' ? '.' : name.toLowerCase() + '.', `mutation ${i}: ${m.toString('hex')}`);
  }
});
