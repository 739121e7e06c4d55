/**
 * Fuzz: 100,000 random and mutated DNS packets through DnsProxy.handleUdp
 * — with a FAKE reply sink (replies are recorded, not sent) and a fake
 * upstream that also mutates one answer in ten — while a valid query goes
 * in every 100 packets and must be answered correctly throughout. Nothing
 * may throw, the proxy must not stall, and every malformed packet must be
 * counted under a reason. Seeded, so a failure replays.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';

/** dns-packet decodes these, its typings omit them. */
const rcodeOf = (m: unknown): string | undefined => (m as { rcode?: string } | undefined)?.rcode;
const dataOf = (a: unknown): unknown => (a as { data?: unknown } | undefined)?.data;
import { compileMatchPattern } from './matchpattern.ts';
import { DnsProxy } from './dns-proxy.ts';
import type { DnsDatagram } from './dns-types.ts';

const TOTAL = 100_000;
const VALID_EVERY = 100;

function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

test('100,000 random and mutated packets: no throw, no stall, valid queries answered throughout', async () => {
  const rnd = rng(0x5eed);
  const seeds: Buffer[] = [
    dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'www.a.test' }] }),
    dnsPacket.encode({ type: 'query', id: 2, questions: [{ type: 'AAAA', name: 'x.y.z.a.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 }] } as dnsPacket.Packet),
    dnsPacket.encode({ type: 'response', id: 3, questions: [{ type: 'A', name: 'a.test' }], answers: [{ type: 'CNAME', name: 'a.test', data: 'b.a.test' }, { type: 'A', name: 'b.a.test', data: '1.2.3.4' }] }),
    // Compression pointers to mutate into loops.
    Buffer.from([0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 0xc0, 12, 0, 1, 0, 1]),
  ];
  const mutate = (src: Buffer): Buffer => {
    const kind = rnd(6);
    if (kind === 0) return Buffer.from(Array.from({ length: rnd(600) }, () => rnd(256))); // garbage
    if (kind === 1) return src.subarray(0, rnd(src.length)); // truncated
    if (kind === 2) return Buffer.concat([src, Buffer.alloc(rnd(6000), rnd(256))]); // oversized / trailing
    const m = Buffer.from(src);
    for (let k = 1 + rnd(6); k > 0; k--) m[rnd(m.length)] = kind === 3 ? 0xc0 | rnd(64) : rnd(256); // pointer bytes or any bytes
    if (kind === 5 && m.length > 5) m[5] = rnd(4); // question count
    return m;
  };

  let validSent = 0;
  let validAnswered = 0;
  let forwarded = 0;
  let probesIntact = 0;
  const probeErrors: string[] = [];
  const sink = {
    reply(d: DnsDatagram, payload: Buffer): void {
      if (d.src.port !== 1) return;
      // A valid probe: same ID always; the learned answer when the fake upstream did not mangle it.
      validAnswered++;
      if (payload.readUInt16BE(0) !== d.payload.readUInt16BE(0)) probeErrors.push(`id ${payload.toString('hex')}`);
      let m: dnsPacket.DecodedPacket | undefined;
      try {
        m = dnsPacket.decode(payload);
      } catch {
        // a mangled upstream answer that still passed our checks: relayed as is
      }
      if (rcodeOf(m) === 'NOERROR' && m?.answers?.some((a) => dataOf(a) === '10.9.8.7')) probesIntact++;
    },
  };
  const p = new DnsProxy({
    allowedFor: () => [compileMatchPattern('**.a.test'), compileMatchPattern('a.test')],
    forwardUdp: async (_dst, payload) => {
      forwarded++;
      const d = dnsPacket.decode(payload);
      const a = dnsPacket.encode({
        type: 'response', id: d.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: d.questions,
        answers: [{ type: 'CNAME', name: d.questions![0]!.name, data: 'edge.a.test' }, { type: 'A', name: 'edge.a.test', ttl: 5, data: '10.9.8.7' }],
      });
      return rnd(10) === 0 ? mutate(a) : a;
    },
    onLearned: async () => {},
    holdMs: 100,
  });

  const t0 = performance.now();
  let maxGapMs = 0;
  let last = performance.now();
  for (let i = 0; i < TOTAL; i++) {
    if (i % VALID_EVERY === 0) {
      validSent++;
      const id = i % 65536;
      const probe = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `p${i}.a.test` }] });
      p.handleUdp({ payload: probe, src: { ip: '10.0.0.1', port: 1 }, origDst: { ip: '10.96.0.10', port: 53 } }, sink);
      // Let the event loop run so answers keep flowing while the fuzz goes on.
      await new Promise<void>((r) => setImmediate(r));
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
    }
    const src = seeds[rnd(seeds.length)]!;
    p.handleUdp({ payload: rnd(3) === 0 ? Buffer.from(Array.from({ length: rnd(40) }, () => rnd(256))) : mutate(src), src: { ip: '10.0.0.2', port: 2 }, origDst: { ip: '10.96.0.10', port: 53 } }, sink);
  }
  await new Promise((r) => setTimeout(r, 300));
  const s = p.stats();
  await p.close();
  const elapsed = performance.now() - t0;
  const malformed = Object.values(s.malformed).reduce((a, b) => a + b, 0);
  console.log(
    `fuzz: ${TOTAL} packets in ${elapsed.toFixed(0)} ms, forwarded ${forwarded}, refused ${s.refused}, ` +
      `malformed ${malformed} ${JSON.stringify(s.malformed)}, upstream malformed ${s.upstreamMalformed}, probes answered ${validAnswered}/${validSent} (intact ${probesIntact}), ` +
      `max gap between probes ${maxGapMs.toFixed(1)} ms`,
  );
  assert.equal(validAnswered, validSent, 'every valid query was answered');
  assert.deepEqual(probeErrors, []);
  assert.ok(probesIntact >= validSent * 0.8, `${probesIntact} of ${validSent} probes got the real answer`);
  assert.equal(s.queries, TOTAL + validSent);
  assert.equal(s.queries, malformed + s.refused + s.forwarded, 'every packet is accounted for');
  assert.ok(malformed > TOTAL / 2, 'most fuzz input is malformed');
  assert.ok(maxGapMs < 250, `the proxy never stalled (max gap ${maxGapMs} ms)`);
});
