/**
 * bench/dns/hot-path: the proxy's per-query helpers alone, in process, no
 * sockets (the end-to-end figures are run.ts's). ns per call, best of 5
 * rounds of N calls, after a warm-up round.
 *
 *   parseQuery        a 1-question A query with EDNS (what dig sends)
 *   parseAnswer       an A answer (owner = pointer to the question), and a CNAME → A chain
 *   fqdnCache.record  an answer whose IP is held and confirmed (the fast path: nothing new)
 *   ipv4ToU32 / ipv4Text  the socket layer's address conversions
 *
 *   node bench/dns/hot-path.ts [--n 200000]
 */
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';
import { parseAnswer, parseQuery, type DnsQuery } from '../../src/proxy/dns/dns-wire.ts';
import { NameCache } from '../../src/fqdn/name-cache.ts';
import { ipv4Text, ipv4ToU32 } from '../../src/proxy/transparent/transparent-udp-libc.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' } } });
const N = Number(values.n);

function nsPerCall(f: (i: number) => unknown): number {
  let sink = 0;
  for (let i = 0; i < N; i++) if (f(i)) sink++;
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if (f(i)) sink++;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / N);
  }
  if (sink < 0) console.log(sink); // keeps the calls observable
  return best;
}

const query = dnsPacket.encode({
  type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'api.github.com' }],
  additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer],
});
const q = (parseQuery(query, 'udp') as { ok: true; query: DnsQuery }).query;
const answerA = dnsPacket.encode({
  type: 'response', id: 7, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  questions: [{ type: 'A', name: 'api.github.com' }], answers: [{ type: 'A', name: 'api.github.com', ttl: 60, data: '140.82.121.6' }],
});
const answerCname = dnsPacket.encode({
  type: 'response', id: 7, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  questions: [{ type: 'A', name: 'api.github.com' }],
  answers: [
    { type: 'CNAME', name: 'api.github.com', ttl: 60, data: 'lb.github.com' },
    { type: 'A', name: 'lb.github.com', ttl: 30, data: '140.82.121.6' },
  ],
});
const cache = new NameCache({ minTtl: 60 });
cache.record('10.0.1.5', q.name, ['140.82.121.6'], 60);
cache.confirm(q.name, ['140.82.121.6'], cache.generation);
const ips = ['140.82.121.6'];

const rows: Array<[string, number]> = [
  ['parseQuery', nsPerCall(() => parseQuery(query, 'udp').ok)],
  ['parseAnswer (A)', nsPerCall(() => parseAnswer(answerA, query, q).ok)],
  ['parseAnswer (CNAME → A)', nsPerCall(() => parseAnswer(answerCname, query, q).ok)],
  ['fqdnCache.record (known, confirmed)', nsPerCall(() => cache.record('10.0.1.5', q.name, ips, 60))],
  ['ipv4ToU32', nsPerCall((i) => ipv4ToU32(i & 1 ? '10.96.0.10' : '140.82.121.6') > 0)],
  ['ipv4Text (interned)', nsPerCall((i) => ipv4Text(0x0a60000a + (i & 15)).length > 0)],
];
for (const [name, ns] of rows) console.log(`${name.padEnd(38)} ${ns.toFixed(0).padStart(6)} ns/call`);
