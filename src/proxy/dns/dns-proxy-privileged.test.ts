/**
 * Privileged: the DNS proxy behind real TPROXY, in three network namespaces
 * of its own (`pl-dn<random>-{pod,node,srv}`, deleted in `after`). Needs root
 * and fails, never skips, without it.
 *
 *   pod 10.98.0.2 ──veth── node 10.98.0.1 | 10.97.0.1 ──veth── srv 10.97.0.2
 *     dig @10.99.0.53        nft prerouting: iif n0, daddr 10.99.0.53,    dnsmasq on
 *                             udp/tcp dport 53 → tproxy to :5300, mark 1   10.99.0.53 and
 *                            ip rule fwmark 1 → table 100 (local 0/0 lo)  10.99.0.54 (lo)
 *                            child: DnsProxy on a transparent UDP socket
 *                            and a transparent TCP listener, port 5300
 *
 * 10.99.0.54 is the same dnsmasq, not steered: "what dnsmasq gives directly".
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { readFile, rm } from 'node:fs/promises';
import dnsPacket from 'dns-packet';
import { createTproxyTopology } from '../../../test/kit/tproxy-topology.ts';

/** dns-packet decodes these, its typings omit them. */
const rcodeOf = (m: unknown): string | undefined => (m as { rcode?: string } | undefined)?.rcode;
const dataOf = (a: unknown): unknown => (a as { data?: unknown } | undefined)?.data;

const execFileP = promisify(execFile);
const CHILD = fileURLToPath(new URL('../../../test/kit/dns-proxy-child.ts', import.meta.url));
const P = `pl-dn${randomBytes(3).toString('hex')}`;
const NS = { pod: `${P}-pod`, node: `${P}-node`, srv: `${P}-srv` };
const PROXY_PORT = 5300;
const STEERED = '10.99.0.53';
/** dnsmasq's query log: which client address each query came from. */
const QUERY_LOG = `/tmp/${P}-dnsmasq.log`;
const DIRECT = '10.99.0.54';

const RULES = `
table inet palisade_dns_test {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    iifname "n0" ip daddr ${STEERED} meta l4proto udp udp dport 53 tproxy ip to :${PROXY_PORT} meta mark set 1 accept
    iifname "n0" ip daddr ${STEERED} meta l4proto tcp tcp dport 53 tproxy ip to :${PROXY_PORT} meta mark set 1 accept
    # The proxy asks in the pod's name: the answers come back to its sockets (as the datapaths do).
    meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set 1 accept
    meta l4proto udp ct direction reply socket transparent 1 socket wildcard 0 meta mark set 1 accept
  }
}
`;

const procs = new Set<ChildProcess>();

async function sh(args: string[], input?: string): Promise<string> {
  const p = execFileP(args[0]!, args.slice(1), { timeout: 20_000, maxBuffer: 16 << 20 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
}
const inNs = (ns: string, args: string[], input?: string): Promise<string> => sh(['ip', 'netns', 'exec', ns, ...args], input);

/** A long-running process in a namespace; stdout lines kept (JSON when they parse). */
function startIn(ns: string, args: string[]): { proc: ChildProcess; lines: Array<Record<string, unknown>>; stderr: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  proc.on('exit', () => procs.delete(proc));
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        lines.push({ text: l });
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { proc, lines, stderr: () => err };
}

async function waitFor<T>(what: string, f: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function podQuery(server: string, name: string, id: number, transport: 'udp' | 'tcp' = 'udp'): Promise<{ answer: Buffer; at: number; ms: number }> {
  const out = JSON.parse(await inNs(NS.pod, [process.execPath, CHILD, 'query', server, name, String(id), transport])) as { answer: string; at: number; ms: number };
  return { answer: Buffer.from(out.answer, 'hex'), at: out.at, ms: out.ms };
}

describe('DNS proxy behind TPROXY, privileged (own network namespaces)', () => {
  let proxy: ReturnType<typeof startIn>;

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'privileged test: must run as root (it is not skipped)');
    await createTproxyTopology(NS, [STEERED, DIRECT]);
    await inNs(NS.node, ['nft', '-f', '-'], RULES);
    startIn(NS.srv, [
      'dnsmasq', '-k', '--conf-file=/dev/null', `--listen-address=${STEERED},${DIRECT}`, '--bind-interfaces', '--no-resolv', '--no-hosts',
      '-u', 'root', '--pid-file=', '--local-ttl=30', '--host-record=allowed.test,10.200.0.1', '--host-record=slow.allowed.test,10.200.0.2',
      '--cname=www.allowed.test,allowed.test', '--host-record=denied.test,10.200.0.9',
      '--host-record=from-pod-udp.allowed.test,10.200.0.4', '--host-record=from-pod-tcp.allowed.test,10.200.0.5', '--log-queries', `--log-facility=${QUERY_LOG}`,
    ]);
    proxy = startIn(NS.node, [process.execPath, CHILD, 'proxy', String(PROXY_PORT), '--allow', 'allowed.test,*.allowed.test', '--learn-delay', '50', '--stall', 'slow.allowed.test.']);
    await waitFor('proxy ready', () => proxy.lines.find((l) => 'ready' in l || 'fatal' in l)).then((l) => assert.ok('ready' in l, `${JSON.stringify(l)} ${proxy.stderr()}`));
    // dnsmasq answers directly once it is up.
    for (let i = 0; ; i++) {
      try {
        await podQuery(DIRECT, 'allowed.test', 1);
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  after(async () => {
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    for (const ns of Object.values(NS)) await sh(['ip', 'netns', 'delete', ns]).catch(() => {});
    await rm(QUERY_LOG, { force: true });
  });

  test('allowed name: the same bytes dnsmasq gives directly (same ID, same records); IPs learned before the answer arrived', async () => {
    const direct = await podQuery(DIRECT, 'www.allowed.test', 0x4d2);
    const via = await podQuery(STEERED, 'www.allowed.test', 0x4d2);
    assert.deepEqual(via.answer, direct.answer, 'unchanged through the proxy');
    const d = dnsPacket.decode(via.answer);
    assert.equal(d.id, 0x4d2);
    assert.deepEqual(d.answers?.map((a) => [a.type, a.name, dataOf(a)]), [['CNAME', 'www.allowed.test', 'allowed.test'], ['A', 'allowed.test', '10.200.0.1']]);
    const learned = await waitFor('learned', () => proxy.lines.find((l) => (l['learned'] as { name?: string } | undefined)?.name === 'www.allowed.test.'));
    const l = learned['learned'] as { pod: string; ips: string[]; ttl: number; at: number };
    assert.equal(l.pod, '10.98.0.2');
    assert.deepEqual(l.ips, ['10.200.0.1']);
    assert.equal(l.ttl, 30);
    assert.ok(l.at <= via.at, `onLearned resolved (${l.at}) before the answer reached the pod (${via.at})`);
    assert.ok(via.ms >= 45, `the answer was held for onLearned's 50 ms (took ${via.ms.toFixed(1)} ms)`);
  });

  test('the server sees each query come from the pod’s own address, not the node’s, over UDP and TCP', async () => {
    for (const tcp of [false, true]) {
      const name = `from-pod-${tcp ? 'tcp' : 'udp'}.allowed.test`;
      const out = await inNs(NS.pod, ['dig', `@${STEERED}`, name, 'A', '+tries=1', '+time=2', ...(tcp ? ['+tcp'] : [])]);
      assert.match(out, /status: NOERROR/, 'answered by the server, through the proxy');
      const log = await readFile(QUERY_LOG, 'utf8');
      const from = [...log.matchAll(new RegExp(`query\\[A\\] ${name.replaceAll('.', '\\.')} from (\\S+)`, 'g'))].map((m) => m[1]);
      assert.deepEqual(from, ['10.98.0.2'], `${tcp ? 'TCP' : 'UDP'}: the pod, never the node (10.97.0.1)`);
    }
  });

  test('denied name: dig shows status: REFUSED with the question echoed', async () => {
    const out = await inNs(NS.pod, ['dig', `@${STEERED}`, 'denied.test', 'A', '+tries=1', '+time=2']);
    assert.match(out, /status: REFUSED/);
    assert.match(out, /;; QUESTION SECTION:\n;denied\.test\.\s+IN\s+A/);
    assert.match(out, /ANSWER: 0/);
    const ev = await waitFor('denied event', () => proxy.lines.find((x) => (x['event'] as { query?: string } | undefined)?.query === 'denied.test.'));
    assert.deepEqual({ ...(ev['event'] as object), pod: undefined, id: undefined }, {
      type: 'query', protocol: 'udp', pod: undefined, server: { ip: STEERED, port: 53 }, id: undefined,
      query: 'denied.test.', qtypes: ['A'], verdict: 'DROPPED', rcode: 5, reason: 'policy-denied',
    });
  });

  test('dig sees the allowed answer from the server it asked, over UDP and TCP', async () => {
    for (const tcp of [false, true]) {
      const out = await inNs(NS.pod, ['dig', `@${STEERED}`, 'allowed.test', 'A', '+tries=1', '+time=2', ...(tcp ? ['+tcp'] : [])]);
      assert.match(out, /status: NOERROR/);
      assert.match(out, /allowed\.test\.\s+30\s+IN\s+A\s+10\.200\.0\.1/);
      assert.match(out, new RegExp(`SERVER: ${STEERED.replaceAll('.', '\\.')}#53\\(${STEERED.replaceAll('.', '\\.')}\\) \\(${tcp ? 'TCP' : 'UDP'}\\)`));
    }
    const denied = await inNs(NS.pod, ['dig', `@${STEERED}`, 'denied.test', '+tcp', '+tries=1', '+time=2']);
    assert.match(denied, /status: REFUSED/);
  });

  test('a query aimed at the proxy port itself is not answered and never forwarded (UDP and TCP): the proxy cannot be made to ask itself', async () => {
    const NODE = '10.98.0.1';
    for (const [i, transport] of (['udp', 'tcp'] as const).entries()) {
      const name = `loop${i}.allowed.test`;
      const out = await inNs(NS.pod, [process.execPath, CHILD, 'query', NODE, name, String(100 + i), transport, '--port', String(PROXY_PORT)]).then(
        (o) => `answered: ${o}`,
        (err: Error) => err.message,
      );
      assert.doesNotMatch(out, /answered/, `${transport}: no answer from ${NODE}:${PROXY_PORT}`);
      assert.equal(proxy.lines.filter((l) => (l['event'] as { query?: string } | undefined)?.query === `${name}.`).length, 0, `${transport}: never seen as a query`);
    }
  });

  test('an onLearned that never resolves holds the answer 100 ms, then it is released and counted', async () => {
    const r = await podQuery(STEERED, 'slow.allowed.test', 77);
    assert.equal(dataOf(dnsPacket.decode(r.answer).answers?.[0]), '10.200.0.2');
    assert.ok(r.ms >= 95 && r.ms < 1000, `held ${r.ms.toFixed(1)} ms`);
    if (proxy.proc.pid !== undefined) process.kill(proxy.proc.pid, 'SIGTERM');
    const s = await waitFor('summary', () => proxy.lines.find((l) => 'summary' in l));
    const summary = s['summary'] as {
      proxy: { holdTimeouts: number; refused: number };
      udp: { noOrigDst: number; notSteered: number; sendErrors: number };
      tcpNotSteered: number;
    };
    assert.equal(summary.udp.notSteered, 1, 'the datagram aimed at the proxy port was counted, once');
    assert.equal(summary.tcpNotSteered, 1, 'the connection aimed at the proxy port was counted, once');
    assert.equal(summary.proxy.holdTimeouts, 1);
    assert.ok(summary.proxy.refused >= 2);
    assert.equal(summary.udp.noOrigDst, 0, 'every datagram carried its original destination');
    assert.equal(summary.udp.sendErrors, 0);
  });
});
