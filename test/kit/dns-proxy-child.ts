/**
 * Child process for dns-proxy-privileged.test.ts and bench/dns (rig.ts), run
 * inside a test network namespace (`ip netns exec pl-dn… node dns-proxy-test-child.ts …`).
 *
 *   proxy <port> [--allow a.test,**.b.test] [--learn-delay MS] [--stall NAME] [--quiet] [--upstream-from pod|node]
 *       TPROXY listener on UDP <port> and a transparent TCP listener on <port>;
 *       upstream queries from the pod's address (default, as the agent sends
 *       them: the namespace must hand their answers back, `socket transparent`) or the node's;
 *       prints {"ready":true}, then {"learned":…} per onLearned call
 *       (with `at` = wall-clock ms when it resolves) and {"event":…} per
 *       event (--quiet: counted, not printed); on SIGTERM {"summary":{proxy, udp, events}}.
 *       onLearned resolves after MS (default 0) and never for NAME.
 *   query <server> <name> <id> [udp|tcp] [--port P]
 *       one A query with that ID, prints {"answer": hex, "at": ms}.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { openTransparentUdp, openUdp, openUdpFrom, type TransparentUdp } from '../../src/proxy/transparent/transparent-udp.ts';
import { connectTransparent, listenTransparent } from '../../src/proxy/transparent/transparent-tcp.ts';
import { compileMatchPattern } from '../../src/fqdn/matchpattern.ts';
import { DnsProxy } from '../../src/proxy/dns/dns-proxy.ts';

const [mode, ...args] = process.argv.slice(2);
const out = (v: unknown): void => void process.stdout.write(JSON.stringify(v) + '\n');
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
/** Wall clock with sub-millisecond resolution, comparable across processes. */
/**
 * Stamps other processes order against: the wall clock itself. performance.timeOrigin
 * is sampled once per process and was seen 36 ms apart between two of them under
 * load, which put a learned stamp after the answer it came before.
 */
const stampMs = (): number => Date.now();

async function proxy(): Promise<void> {
  const port = Number(args[0]);
  const allow = flag('--allow');
  const learnDelay = Number(flag('--learn-delay') ?? 0);
  const stall = flag('--stall');
  const quiet = args.includes('--quiet');
  const matchers = allow ? allow.split(',').map(compileMatchPattern) : null;
  let events = 0;
  const fromPod = (flag('--upstream-from') ?? 'pod') === 'pod';
  const p = new DnsProxy({
    // As the agent runs it: upstream queries on the datapath's batched sockets, in the pod's name.
    ...(fromPod
      ? { upstreamFrom: 'pod', openUpstreamSocket: openUdpFrom, upstreamTcp: (server, pod) => connectTransparent({ ip: pod.ip }, server) }
      : { upstreamFrom: 'node', openUpstreamSocket: openUdp }),
    allowedFor: () => matchers,
    minTtl: 5,
    onLearned: (pod, name, ips, ttl) => {
      if (name === stall) return new Promise<void>(() => {});
      return new Promise<void>((resolve) => {
        const done = (): void => {
          if (!quiet) out({ learned: { pod, name, ips, ttl, at: stampMs() } });
          resolve();
        };
        if (learnDelay > 0) setTimeout(done, learnDelay);
        else done();
      });
    },
    // Quiet still takes every event (as the agent will), it only does not print them.
    onEvent: quiet ? () => void events++ : (e) => out({ event: e }),
  });
  let udp: TransparentUdp | undefined;
  udp = await openTransparentUdp(port, (d) => p.handleUdp(d, udp!));
  // The agent's listener: connections aimed at the proxy port itself are reset there.
  const server = await listenTransparent(port, (s) => p.handleTcp(s), { allowHalfOpen: true });
  process.on('SIGTERM', () => {
    server.close();
    void Promise.all([udp.close(), p.close()]).then(() => {
      out({ summary: { proxy: p.stats(), udp: udp.stats, tcpNotSteered: server.notSteered, events } });
      process.exit(0);
    });
  });
  if (process.env['PL_DNS_TRACE']) {
    const { performance: perf } = await import('node:perf_hooks');
    let elu = perf.eventLoopUtilization();
    setInterval(() => {
      const e = perf.eventLoopUtilization(elu);
      elu = perf.eventLoopUtilization();
      const s = p.stats();
      process.stderr.write(`q=${s.queries} a=${s.answered} to=${s.upstreamTimeouts} udp=${JSON.stringify(udp.stats)} elu=${e.utilization.toFixed(2)}\n`);
    }, 1000).unref();
  }
  out({ ready: true, port: udp.port });
}

async function query(): Promise<void> {
  const [server, name, idText, transport = 'udp'] = args;
  const port = Number(flag('--port') ?? 53);
  const msg = dnsPacket.encode({ type: 'query', id: Number(idText), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: name! }] });
  const t0 = performance.now();
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer in 3 s')), 3000);
    if (transport === 'tcp') {
      const s = net.connect(port, server!, () => s.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg])));
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(timer);
          s.destroy();
          resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        }
      });
      s.on('error', reject);
    } else {
      const s = dgram.createSocket('udp4');
      s.on('message', (m) => {
        clearTimeout(timer);
        s.close();
        resolve(m);
      });
      s.send(msg, port, server!);
    }
  });
  out({ answer: answer.toString('hex'), at: stampMs(), ms: performance.now() - t0 });
}

try {
  if (mode === 'proxy') await proxy();
  else if (mode === 'query') await query();
  else throw new Error(`unknown mode ${mode}`);
} catch (err) {
  out({ fatal: (err as Error).message });
  process.exit(1);
}
