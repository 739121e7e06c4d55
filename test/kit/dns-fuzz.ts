/**
 * Test support: a seeded generator of random and mutated DNS messages, shared
 * by the proxy's fuzz test (src/proxy/dns/dns-proxy-fuzz.test.ts) and the
 * end-to-end fuzz that sends them at an agent (test/e2e/fixtures/dns-client.ts).
 * Seeded, so a failure replays.
 */
import dnsPacket from 'dns-packet';

/** xorshift32: `rnd(n)` is an integer in [0, n). */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** Well-formed messages to mutate: queries with and without EDNS, a response with a CNAME, a compression pointer. */
export const FUZZ_SEEDS: readonly Buffer[] = [
  dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'www.a.test' }] }),
  dnsPacket.encode({ type: 'query', id: 2, questions: [{ type: 'AAAA', name: 'x.y.z.a.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 }] } as dnsPacket.Packet),
  dnsPacket.encode({ type: 'response', id: 3, questions: [{ type: 'A', name: 'a.test' }], answers: [{ type: 'CNAME', name: 'a.test', data: 'b.a.test' }, { type: 'A', name: 'b.a.test', data: '1.2.3.4' }] }),
  Buffer.from([0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 0xc0, 12, 0, 1, 0, 1]),
];

/**
 * One malformed (or accidentally valid) message per call, from `src` or a
 * random seed: garbage,
 * truncated, oversized, compression pointers (loops), wrong opcode, a name
 * pointing at itself, a lying question count, or random byte flips.
 */
export function dnsMutator(rnd: (n: number) => number, seeds: readonly Buffer[] = FUZZ_SEEDS): (src?: Buffer) => Buffer {
  return (given) => {
    const src = given ?? seeds[rnd(seeds.length)]!;
    const kind = rnd(8);
    if (kind === 0) return Buffer.from(Array.from({ length: rnd(600) }, () => rnd(256)));
    if (kind === 1) return src.subarray(0, rnd(src.length));
    if (kind === 2) return Buffer.concat([src, Buffer.alloc(rnd(6000), rnd(256))]);
    const m = Buffer.from(src);
    if (kind === 3) for (let k = 1 + rnd(6); k > 0; k--) m[rnd(m.length)] = 0xc0 | rnd(64);
    else if (kind === 4 && m.length > 2) m[2] = (m[2]! & 0x87) | ((1 + rnd(15)) << 3);
    else if (kind === 5 && m.length > 13) (m[12] = 0xc0), (m[13] = 12);
    else if (kind === 6 && m.length > 5) m.writeUInt16BE(rnd(65536), 4);
    else for (let k = 1 + rnd(6); k > 0; k--) m[rnd(m.length)] = rnd(256);
    return m;
  };
}
