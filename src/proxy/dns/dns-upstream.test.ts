/**
 * The proxy's UDP upstream (UdpUpstream), on the agent's batched libc
 * sockets and on the dgram default, against a real socket on loopback. The one boundary faked is the DNS
 * server: a dgram socket answering from a table with dns-packet.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { compileMatchPattern } from '../../fqdn/index.ts';
import { DnsProxy } from './dns-proxy.ts';
import { UdpUpstream, UpstreamSocketError, UpstreamTimeoutError } from './dns-upstream.ts';
import { within } from '../../../test/kit/wait.ts';
import type { DnsDatagram, DnsReplySink, OpenUpstreamSocket } from './dns-types.ts';
import { openDgramSocket } from './dgram-socket.ts';
// The agent's sockets live in the datapath; this test checks the upstream on them too.
import { openUdp } from '../transparent/index.ts';

const rcodeOf = (m: unknown): string | undefined => (m as { rcode?: string } | undefined)?.rcode;

function query(name: string, id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
}

function answerTo(q: Buffer, ip = '1.1.1.1'): Buffer {
  const d = dnsPacket.decode(q);
  return dnsPacket.encode({
    type: 'response', id: d.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: d.questions, answers: [{ type: 'A', name: d.questions![0]!.name, ttl: 30, data: ip }],
  });
}

/** The fake DNS server: `respond` decides what to send back for each query (nothing: silence). */
async function server(respond: (q: Buffer, reply: (b: Buffer, via?: dgram.Socket) => void) => void): Promise<{ port: number; spoofer: dgram.Socket; close(): void }> {
  const s = dgram.createSocket('udp4');
  const spoofer = dgram.createSocket('udp4');
  s.on('message', (m, r) => respond(m, (b, via = s) => via.send(b, r.port, r.address)));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => spoofer.bind(0, '127.0.0.1', r));
  return { port: s.address().port, spoofer, close: () => (s.close(), spoofer.close()) };
}

const SOCKETS: [string, OpenUpstreamSocket][] = [
  ['batched libc sockets', openUdp],
  ['dgram', openDgramSocket],
];

for (const [kind, open] of SOCKETS) describe(`UdpUpstream on loopback, ${kind}`, () => {
  test('a random upstream ID on the wire, the pod’s ID back; other sources and questions ignored', async () => {
    const seenIds: number[] = [];
    const srv = await server((q, reply) => {
      seenIds.push(q.readUInt16BE(0));
      reply(answerTo(q, '6.6.6.6'), srv.spoofer); // right ID, wrong source port
      const other = Buffer.from(answerTo(query('other.test', q.readUInt16BE(0))));
      reply(other); // right source, wrong question
      reply(answerTo(q));
    });
    const u = new UdpUpstream({ from: 'node', sockets: 2, openSocket: open });
    try {
      const q = query('a.test', 0x1234);
      const sent = Buffer.from(q);
      const a = await u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, q, 2000);
      assert.deepEqual(q, sent, 'the pod’s query is left as it was');
      const d = dnsPacket.decode(a);
      assert.equal(d.id, 0x1234);
      assert.equal((d.answers?.[0] as { data?: string }).data, '1.1.1.1');
      assert.equal(seenIds.length, 1);
      for (let i = 0; i < 100 && u.counters.mismatched < 2; i++) await new Promise((r) => setTimeout(r, 10)); // the spoofer's socket may be read later
      assert.equal(u.counters.mismatched, 2);
      assert.equal(u.counters.answered, 1);
    } finally {
      u.close();
      srv.close();
    }
  });

  test('a silent server: UpstreamTimeoutError after about timeoutMs (one coarse sweep)', async () => {
    const srv = await server(() => {});
    const u = new UdpUpstream({ from: 'node', openSocket: open });
    try {
      const t0 = performance.now();
      await assert.rejects(u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 1), 150), UpstreamTimeoutError);
      const took = performance.now() - t0;
      assert.ok(took >= 145 && took < 600, `${took} ms`);
      assert.equal(u.counters.timeouts, 1);
    } finally {
      u.close();
      srv.close();
    }
  });

  test('a datagram the kernel refuses fails at once (broadcast without SO_BROADCAST: EACCES, nothing sent)', async () => {
    const u = new UdpUpstream({ from: 'node', openSocket: open });
    try {
      const t0 = performance.now();
      await assert.rejects(u.forward('10.0.0.5', { ip: '255.255.255.255', port: 53 }, query('a.test', 1), 5000), /EACCES/);
      assert.ok(performance.now() - t0 < 1000);
      assert.equal(u.counters.sendErrors, 1);
    } finally {
      u.close();
    }
  });
});

describe('UdpUpstream from pods’ addresses (the pool; the transparent sockets themselves: dns-proxy-privileged.test.ts and the e2e dns-source)', () => {
  /** dgram sockets on loopback standing in for transparent ones: records what each was opened for and whether it was closed. */
  function opener(fail = false): { open: OpenUpstreamSocket; opened: Array<{ source?: string; peer?: string; closed: boolean }> } {
    const opened: Array<{ source?: string; peer?: string; closed: boolean }> = [];
    const open: OpenUpstreamSocket = (onDatagram, { source, peer, ...rest }) => {
      if (fail) throw new Error('IP_TRANSPARENT: EPERM');
      const rec = { ...(source !== undefined ? { source } : {}), ...(peer ? { peer: `${peer.ip}:${peer.port}` } : {}), closed: false };
      opened.push(rec);
      const s = openDgramSocket(onDatagram, rest);
      return { get port() { return s.port; }, send: s.send, unref: s.unref, close: () => ((rec.closed = true), s.close()) };
    };
    return { open, opened };
  }

  test('one socket per pod and server, opened for that pod and server and shared by its queries; answers matched per socket', async () => {
    const srv = await server((q, reply) => reply(answerTo(q)));
    const other = await server((q, reply) => reply(answerTo(q, '2.2.2.2')));
    const { open, opened } = opener();
    const u = new UdpUpstream({ openSocket: open });
    try {
      const to = { ip: '127.0.0.1', port: srv.port };
      const answers = await Promise.all([
        u.forward('10.0.0.5', to, query('a.test', 1), 2000),
        u.forward('10.0.0.5', to, query('b.test', 2), 2000),
        u.forward('10.0.0.6', to, query('a.test', 3), 2000),
        u.forward('10.0.0.5', { ip: '127.0.0.1', port: other.port }, query('a.test', 4), 2000),
      ]);
      assert.deepEqual(answers.map((a) => dnsPacket.decode(a).id), [1, 2, 3, 4]);
      assert.equal((dnsPacket.decode(answers[3]!).answers?.[0] as { data?: string }).data, '2.2.2.2');
      assert.deepEqual(opened.map((o) => `${o.source} → ${o.peer}`), [
        `10.0.0.5 → 127.0.0.1:${srv.port}`, `10.0.0.6 → 127.0.0.1:${srv.port}`, `10.0.0.5 → 127.0.0.1:${other.port}`,
      ]);
      assert.equal(u.counters.sockets, 3);
      assert.equal(u.counters.answered, 4);
    } finally {
      u.close();
      srv.close();
      other.close();
    }
    assert.ok(opened.every((o) => o.closed), 'closed with the upstream');
  });

  test('bounded: a new pod takes the least recently used idle socket; with every socket waiting for answers the query fails, counted', async () => {
    const silent = await server(() => {});
    const srv = await server((q, reply) => reply(answerTo(q)));
    const { open, opened } = opener();
    const u = new UdpUpstream({ openSocket: open, maxSockets: 1 });
    try {
      await u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 1), 2000);
      await u.forward('10.0.0.6', { ip: '127.0.0.1', port: srv.port }, query('a.test', 2), 2000);
      assert.deepEqual(opened.map((o) => [o.source, o.closed]), [['10.0.0.5', true], ['10.0.0.6', false]]);
      const waiting = u.forward('10.0.0.6', { ip: '127.0.0.1', port: silent.port }, query('a.test', 3), 300);
      // 10.0.0.6's socket to srv is idle: it makes room; the one to `silent` now waits for an answer.
      await assert.rejects(u.forward('10.0.0.7', { ip: '127.0.0.1', port: srv.port }, query('a.test', 4), 2000), UpstreamSocketError);
      assert.equal(u.counters.poolFull, 1);
      assert.equal(opened.length, 3, 'no socket opened for 10.0.0.7');
      await assert.rejects(waiting, UpstreamTimeoutError);
    } finally {
      u.close();
      silent.close();
      srv.close();
    }
  });

  test('one pod holds at most maxSocketsPerPod: its own idle socket makes room, other pods keep theirs', async () => {
    const silent = await server(() => {});
    const srv = await server((q, reply) => reply(answerTo(q)));
    const other = await server((q, reply) => reply(answerTo(q)));
    const { open, opened } = opener();
    const u = new UdpUpstream({ openSocket: open, maxSocketsPerPod: 1 });
    try {
      await u.forward('10.0.0.6', { ip: '127.0.0.1', port: srv.port }, query('a.test', 1), 2000);
      await u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 2), 2000);
      await u.forward('10.0.0.5', { ip: '127.0.0.1', port: other.port }, query('a.test', 3), 2000);
      assert.deepEqual(opened.map((o) => [o.source, o.closed]), [['10.0.0.6', false], ['10.0.0.5', true], ['10.0.0.5', false]]);
      const waiting = u.forward('10.0.0.5', { ip: '127.0.0.1', port: silent.port }, query('a.test', 4), 300);
      await assert.rejects(u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 5), 2000), UpstreamSocketError);
      assert.equal(u.counters.poolFull, 1);
      await u.forward('10.0.0.6', { ip: '127.0.0.1', port: srv.port }, query('a.test', 6), 2000);
      await assert.rejects(waiting, UpstreamTimeoutError);
    } finally {
      u.close();
      silent.close();
      srv.close();
      other.close();
    }
  });

  test('idle sockets close (nothing pending, unused for idleMs)', async () => {
    const srv = await server((q, reply) => reply(answerTo(q)));
    const { open, opened } = opener();
    const u = new UdpUpstream({ openSocket: open, idleMs: 50 });
    try {
      await u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 1), 2000);
      await within(3000, 'the idle socket closed', () => u.counters.sockets === 0);
      assert.equal(opened[0]!.closed, true);
      await u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 2), 2000);
      assert.equal(opened.length, 2, 'a new one on the next query');
    } finally {
      u.close();
      srv.close();
    }
  });

  test('a socket that cannot be made fails the query (UpstreamSocketError, counted): nothing sent from the node instead', async () => {
    const seen: Buffer[] = [];
    const srv = await server((q) => seen.push(q));
    const { open } = opener(true);
    const u = new UdpUpstream({ openSocket: open });
    try {
      await assert.rejects(u.forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 1), 2000), /IP_TRANSPARENT: EPERM/);
      await assert.rejects(new UdpUpstream().forward('10.0.0.5', { ip: '127.0.0.1', port: srv.port }, query('a.test', 2), 2000), UpstreamSocketError, 'dgram cannot send from a pod');
      assert.equal(u.counters.socketErrors, 1);
      assert.equal(u.counters.sent, 0);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seen, []);
    } finally {
      u.close();
      srv.close();
    }
  });
});

describe('DnsProxy on its default upstream', () => {
  class Sink implements DnsReplySink {
    readonly replies: Buffer[] = [];
    reply(_d: DnsDatagram, payload: Buffer): void {
      this.replies.push(payload);
    }
    async next(n: number): Promise<Buffer> {
      const deadline = Date.now() + 3000;
      while (this.replies.length < n) {
        if (Date.now() > deadline) throw new Error('no reply');
        await new Promise((r) => setTimeout(r, 5));
      }
      return this.replies[n - 1]!;
    }
  }

  test('known IPs are not held: onLearned once per name until it fails; errors become SERVFAIL', async () => {
    const srv = await server((q, reply) => reply(answerTo(q)));
    const learned: string[] = [];
    let fail = false;
    const p = new DnsProxy({
      upstreamFrom: 'node',
      allowedFor: () => [compileMatchPattern('*.test')],
      onLearned: async (_pod, name) => {
        learned.push(name);
        if (fail) throw new Error('datapath busy');
      },
    });
    const sink = new Sink();
    const dgramOf = (payload: Buffer, port = srv.port): DnsDatagram => ({ payload, src: { ip: '10.0.0.5', port: 4000 }, origDst: { ip: '127.0.0.1', port } });
    try {
      const q1 = query('a.test', 1);
      p.handleUdp(dgramOf(q1), sink);
      assert.deepEqual(await sink.next(1), answerTo(q1));
      p.handleUdp(dgramOf(query('a.test', 2)), sink);
      assert.equal(dnsPacket.decode(await sink.next(2)).id, 2);
      assert.deepEqual(learned, ['a.test.'], 'the second answer’s IP was confirmed: no second call');
      assert.equal(p.stats().knownAnswers, 1);

      fail = true;
      p.handleUdp(dgramOf(query('b.test', 3)), sink);
      await sink.next(3);
      p.handleUdp(dgramOf(query('b.test', 4)), sink);
      await sink.next(4);
      assert.deepEqual(learned, ['a.test.', 'b.test.', 'b.test.'], 'a failed onLearned confirms nothing: called again');
      assert.equal(p.stats().learnErrors, 2);

      p.handleUdp(dgramOf(query('c.test', 5), 0), sink); // port 0: the kernel refuses to send
      const r = dnsPacket.decode(await sink.next(5));
      assert.equal(rcodeOf(r), 'SERVFAIL');
      assert.equal(p.stats().upstreamErrors, 1);
    } finally {
      await p.close();
      srv.close();
    }
  });
});
