/**
 * bench/ebpf/program-cost: what from_container costs per packet, measured in
 * the kernel with BPF_PROG_TEST_RUN (bpftool prog run … repeat N), away from
 * iperf3's noise: the program as attached in a test topology, a TCP packet
 * of pod a → pod b (same node) and b → a (its replies), once for a
 * connection's first packet (to create its CT entry), then repeated as an
 * established packet — the per-packet path every byte of a bulk transfer takes.
 *
 * A test run does not restore the packet between repeats, and the program
 * takes one off the TTL each time: a frame sent with TTL 255 stays on the
 * forwarding path for 253 repeats, so each figure is the in-kernel average of
 * 253 runs and the median over many such runs is reported. Caveat: a test-run
 * skb is never cloned, so the head copy that the TTL rewrite costs on a TCP
 * sender's (cloned) skb is not in these figures.
 *
 * Run as root: node bench/ebpf/program-cost.ts [--rounds 200]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { run } from '../../src/kernel/exec.ts';
import { DatapathTestLab as EbpfTestLab } from '../../test/kit/datapath-topology.ts';
import type { EbpfStatus } from '../../src/datapath/ebpf/ebpf-datapath.ts';
import { loadAverage, summarise } from '../datapath/alternating.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '200' } } });
if (process.getuid?.() !== 0) throw new Error('bench/ebpf/program-cost needs root');

const REPEAT = 253;
const TC_ACT_REDIRECT = 7;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

/** Ethernet + IPv4 (valid header checksum, TTL 255) + a 20-byte TCP header. */
function tcpFrame(src: string, dst: string, sport: number, dport: number, flags: number): Buffer {
  const b = Buffer.alloc(14 + 20 + 20);
  b.writeUInt16BE(0x0800, 12);
  b.writeUInt8(0x45, 14);
  b.writeUInt16BE(40, 16);
  b.writeUInt8(255, 22);
  b.writeUInt8(6, 23);
  for (const [i, ip] of [src, dst].entries()) ip.split('.').forEach((o, j) => b.writeUInt8(Number(o), 26 + i * 4 + j));
  let sum = 0;
  for (let o = 14; o < 34; o += 2) sum += b.readUInt16BE(o);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  b.writeUInt16BE(~sum & 0xffff, 24);
  b.writeUInt16BE(sport, 34);
  b.writeUInt16BE(dport, 36);
  b.writeUInt8(0x50, 46);
  b.writeUInt8(flags, 47);
  return b;
}

/** The __sk_buff given to the test run: only ifindex (offset 40) set, the veth the program sits on. */
function skbCtx(ifindex: number): Buffer {
  const b = Buffer.alloc(44);
  b.writeUInt32LE(ifindex, 40);
  return b;
}

const lab = new EbpfTestLab();
const dir = mkdtempSync(`${tmpdir()}/palisade-prog-cost-`);
const results = new Map<string, number[]>();
try {
  const agents = await lab.create();
  const node1 = agents.get('node-1')!;
  await node1.call('apply', { world: lab.world('node-1') });
  const status = await node1.call<EbpfStatus>('status');
  const netns = lab.node('node-1').netns;
  const prog = (pod: string): { id: number; ifindex: number } => {
    const p = status.programs.find((x) => x.endpoint === `default/${pod}`)!;
    return { id: p.fromContainer, ifindex: p.ifindex };
  };
  const testRun = async (progId: number, frame: Buffer, ifindex: number, repeat: number): Promise<number> => {
    writeFileSync(`${dir}/pkt`, frame);
    writeFileSync(`${dir}/ctx`, skbCtx(ifindex));
    const r = await run('bpftool', ['prog', 'run', 'id', String(progId), 'data_in', `${dir}/pkt`, 'ctx_in', `${dir}/ctx`, 'repeat', String(repeat)], { netns });
    const m = /Return value: (\d+), duration(?: \(average\))?: (\d+)ns/.exec(r.stdout + r.stderr);
    if (!m || Number(m[1]) !== TC_ACT_REDIRECT) throw new Error(`bpftool prog run: not redirected: ${r.stdout}${r.stderr}`);
    return Number(m[2]);
  };
  const a = lab.pod('a');
  const b = lab.pod('b');
  // The connection's first packet creates its CT entry; from then on it is established.
  await testRun(prog('a').id, tcpFrame(a.ip, b.ip, 40000, 5201, TCP_SYN), prog('a').ifindex, 1);
  const cases: [string, () => Promise<number>][] = [
    ['a → b, established (data)', () => testRun(prog('a').id, tcpFrame(a.ip, b.ip, 40000, 5201, TCP_ACK), prog('a').ifindex, REPEAT)],
    ['b → a, reply (ACKs)', () => testRun(prog('b').id, tcpFrame(b.ip, a.ip, 5201, 40000, TCP_ACK), prog('b').ifindex, REPEAT)],
  ];
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const [name, f] of cases) {
      const list = results.get(name) ?? [];
      list.push(await f());
      results.set(name, list);
    }
  }
} finally {
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`bench/ebpf/program-cost — from_container per packet, BPF_PROG_TEST_RUN, median of ${values.rounds} runs × ${REPEAT} repeats; load ${loadAverage()}`);
for (const [name, v] of results) {
  const s = summarise(v);
  console.log(`  ${name.padEnd(28)} median ${s.median} ns, min ${s.min} ns, max ${s.max} ns`);
}
