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
import { compileMatchPattern } from '../../fqdn/index.ts';
import { DnsProxy } from './dns-proxy.ts';
import { dnsMutator, rng } from '../../../test/kit/dns-fuzz.ts';
import type { DnsDatagram } from './dns-types.ts';

const TOTAL = 100_000;
const VALID_EVERY = 100;

test('100,000 random and mutated packets: no throw, no stall, valid queries answered throughout', async () => {
  const rnd = rng(0x5eed);
  const mutate = dnsMutator(rnd);

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
    p.handleUdp({ payload: rnd(3) === 0 ? Buffer.from(Array.from({ length: rnd(40) }, () => rnd(256))) : mutate(), src: { ip: '10.0.0.2', port: 2 }, origDst: { ip: '10.96.0.10', port: 53 } }, sink);
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
