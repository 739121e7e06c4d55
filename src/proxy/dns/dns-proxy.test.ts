/**
 * DnsProxy against fakes: the upstream is a function answering from a table
 * (dns-packet), replies go to a fake sink that records them. TCP runs over
 * real loopback sockets (port 0) against a fake TCP DNS server.
 */
import assert from 'node:assert/strict';
import nodeDgram from 'node:dgram';
import net from 'node:net';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';

/** dns-packet decodes these, its typings omit them. */
const rcodeOf = (m: unknown): string | undefined => (m as { rcode?: string } | undefined)?.rcode;
const dataOf = (a: unknown): unknown => (a as { data?: unknown } | undefined)?.data;
import { compileMatchPattern } from '../../fqdn/index.ts';
import { DnsProxy, type DnsProxyOptions } from './dns-proxy.ts';
import type { DnsDatagram, DnsEvent, DnsReplySink } from './dns-types.ts';

const POD = { ip: '10.0.1.5', port: 40000 };
const SERVER = { ip: '10.96.0.10', port: 53 };

const ZONE: Record<string, dnsPacket.Answer[]> = {
  'a.test': [{ type: 'A', name: 'a.test', ttl: 30, data: '1.1.1.1' }],
  'www.a.test': [
    { type: 'CNAME', name: 'www.a.test', ttl: 60, data: 'a.test' },
    { type: 'A', name: 'a.test', ttl: 30, data: '1.1.1.1' },
    { type: 'AAAA', name: 'a.test', ttl: 30, data: '2001:db8::1' },
  ],
  'denied.test': [{ type: 'A', name: 'denied.test', ttl: 30, data: '6.6.6.6' }],
};

function query(name: string, id = 0x1234, type: dnsPacket.RecordType = 'A'): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
}

/** The fake upstream: answers from ZONE (NXDOMAIN otherwise), as a server would. */
function answerFor(payload: Buffer): Buffer {
  const d = dnsPacket.decode(payload);
  const name = d.questions![0]!.name;
  const answers = ZONE[name.toLowerCase()];
  return dnsPacket.encode({
    type: 'response', id: d.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (answers ? 0 : 3),
    questions: d.questions, answers: answers ?? [],
  });
}

class Sink implements DnsReplySink {
  readonly replies: Buffer[] = [];
  #waiters: Array<() => void> = [];
  reply(_d: DnsDatagram, payload: Buffer): void {
    this.replies.push(payload);
    for (const w of this.#waiters.splice(0)) w();
  }
  async next(n = 1, timeoutMs = 2000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < n) {
      if (Date.now() > deadline) throw new Error('no reply');
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 20);
      });
    }
    return this.replies[n - 1]!;
  }
}

function proxy(extra: Partial<DnsProxyOptions> = {}): { p: DnsProxy; forwarded: Buffer[]; events: DnsEvent[]; log: string[] } {
  const forwarded: Buffer[] = [];
  const events: DnsEvent[] = [];
  const log: string[] = [];
  const p = new DnsProxy({
    // The proxy's logic against fakes and loopback servers: the node's address (pod sources: dns-upstream.test.ts).
    upstreamFrom: 'node',
    allowedFor: (ip) => (ip === POD.ip ? [compileMatchPattern('a.test'), compileMatchPattern('*.a.test')] : null),
    forwardUdp: async (_dst, payload) => {
      forwarded.push(payload);
      return answerFor(payload);
    },
    onLearned: async (pod, name, ips, ttl) => void log.push(`learned ${pod} ${name} ${ips.join(',')} ${ttl}`),
    onEvent: (e) => events.push(e),
    minTtl: 10,
    ...extra,
  });
  return { p, forwarded, events, log };
}

const dgram = (payload: Buffer, src = POD): DnsDatagram => ({ payload, src, origDst: SERVER });

/** A UDP server on loopback that records what it gets and never answers. */
async function dgramServer(onMessage: (m: Buffer) => void): Promise<{ port: number; close(): void }> {
  const s = nodeDgram.createSocket('udp4');
  s.on('message', onMessage);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return { port: s.address().port, close: () => s.close() };
}

describe('DnsProxy over UDP', () => {
  test('allowed name: forwarded, answer unchanged (same ID, same records), IPs learned through the CNAME', async () => {
    const { p, forwarded, events, log } = proxy();
    const sink = new Sink();
    const q = query('WWW.a.test', 0xabcd);
    p.handleUdp(dgram(q), sink);
    const r = await sink.next();
    assert.equal(forwarded.length, 1);
    assert.deepEqual(r, answerFor(q), 'the server’s bytes, unchanged');
    assert.equal(dnsPacket.decode(r).id, 0xabcd);
    assert.deepEqual(log, ['learned 10.0.1.5 www.a.test. 1.1.1.1,2001:db8::1 30']);
    assert.deepEqual(p.fqdnCache.namesForIp('2001:db8::1'), ['www.a.test.']);
    assert.deepEqual(events.map((e) => [e.type, e.verdict, e.query, e.qtypes, e.rcode, e.ips, e.ttl]), [
      ['query', 'FORWARDED', 'www.a.test.', ['A'], undefined, undefined, undefined],
      ['response', 'FORWARDED', 'www.a.test.', ['A'], 0, ['1.1.1.1', '2001:db8::1'], 30],
    ]);
    await p.close();
  });

  test('denied name: REFUSED with the question echoed, never forwarded; the type is not checked', async () => {
    const { p, forwarded, events } = proxy();
    const sink = new Sink();
    for (const type of ['A', 'TXT'] as const) p.handleUdp(dgram(query('denied.test', 7, type)), sink);
    await sink.next(2);
    for (const r of sink.replies) {
      const d = dnsPacket.decode(r);
      assert.equal(rcodeOf(d), 'REFUSED');
      assert.equal(d.id, 7);
      assert.equal(d.questions![0]!.name, 'denied.test');
    }
    assert.equal(forwarded.length, 0);
    assert.deepEqual(events.map((e) => [e.type, e.verdict, e.rcode, e.reason]), [
      ['query', 'DROPPED', 5, 'policy-denied'],
      ['query', 'DROPPED', 5, 'policy-denied'],
    ]);
    assert.equal(p.stats().refused, 2);
    await p.close();
  });

  test('a server whose ingress policy does not admit the pod: SERVFAIL at once, never forwarded, counted', async () => {
    const { p, forwarded, events } = proxy({ allowedFor: (ip) => (ip === POD.ip ? 'server-denies' : 'all') });
    const sink = new Sink();
    p.handleUdp(dgram(query('a.test', 9)), sink);
    const d = dnsPacket.decode(await sink.next());
    assert.equal(rcodeOf(d), 'SERVFAIL');
    assert.equal(d.id, 9);
    assert.equal(d.questions![0]!.name, 'a.test');
    assert.equal(forwarded.length, 0);
    assert.deepEqual(events.map((e) => [e.type, e.verdict, e.rcode, e.reason]), [['query', 'DROPPED', 2, 'server-denied']]);
    assert.equal(p.stats().serverDenied, 1);
    await p.close();
  });

  test('queries leave in the pod’s name: forwardUdp and upstreamTcp are told the pod', async () => {
    const pods: string[] = [];
    const { p } = proxy({
      upstreamFrom: 'pod',
      forwardUdp: async (_dst, payload, _t, pod) => {
        pods.push(`udp ${pod.ip}:${pod.port}`);
        return answerFor(payload);
      },
    });
    const sink = new Sink();
    p.handleUdp(dgram(query('a.test')), sink);
    assert.equal(rcodeOf(dnsPacket.decode(await sink.next())), 'NOERROR');
    assert.deepEqual(pods, ['udp 10.0.1.5:40000']);
    await p.close();
  });

  test('upstreamFrom pod with no way to send from the pod’s address (dgram, no upstreamTcp): SERVFAIL, counted, nothing leaves from the node', async () => {
    const seen: string[] = [];
    const server = dgramServer((m) => seen.push(m.toString('hex')));
    const srv = await server;
    const p = new DnsProxy({ allowedFor: () => 'all' }); // the defaults: from the pod, dgram sockets
    const sink = new Sink();
    try {
      p.handleUdp({ payload: query('a.test', 3), src: POD, origDst: { ip: '127.0.0.1', port: srv.port } }, sink);
      assert.equal(rcodeOf(dnsPacket.decode(await sink.next())), 'SERVFAIL');
      const front = net.createServer({ allowHalfOpen: true }, (s) => p.handleTcp(s, { ip: '127.0.0.1', port: srv.port }));
      await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
      const c = net.connect((front.address() as net.AddressInfo).port, '127.0.0.1');
      const q = query('a.test', 4);
      const got = new Promise<Buffer>((resolve) => c.once('data', resolve));
      c.write(Buffer.concat([Buffer.from([0, q.length]), q]));
      assert.equal(rcodeOf(dnsPacket.decode((await got).subarray(2))), 'SERVFAIL');
      c.destroy();
      front.close();
      assert.equal(p.stats().upstreamSocketErrors, 2, 'one UDP and one TCP query');
      assert.equal(p.stats().upstreamErrors, 2);
      assert.deepEqual(seen, [], 'the server got nothing');
    } finally {
      await p.close();
      srv.close();
    }
  });

  test('a pod not subject to DNS rules (null) gets everything forwarded', async () => {
    const { p, forwarded } = proxy();
    const sink = new Sink();
    p.handleUdp(dgram(query('denied.test'), { ip: '10.0.9.9', port: 1 }), sink);
    assert.equal(rcodeOf(dnsPacket.decode(await sink.next())), 'NOERROR');
    assert.equal(forwarded.length, 1);
    await p.close();
  });

  test('the answer waits for onLearned', async () => {
    let resolveLearn!: () => void;
    const { p } = proxy({ onLearned: () => new Promise<void>((r) => (resolveLearn = r)), holdMs: 5000 });
    const sink = new Sink();
    p.handleUdp(dgram(query('a.test')), sink);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sink.replies.length, 0, 'held');
    resolveLearn();
    await sink.next();
    assert.equal(p.stats().holdTimeouts, 0);
    await p.close();
  });

  test('held at most holdMs, then released and counted; a rejecting onLearned releases at once', async () => {
    const { p } = proxy({ onLearned: (_p, name) => (name === 'a.test.' ? new Promise<void>(() => {}) : Promise.reject(new Error('x'))), holdMs: 40 });
    const sink = new Sink();
    const t0 = performance.now();
    p.handleUdp(dgram(query('a.test')), sink);
    await sink.next();
    const held = performance.now() - t0;
    assert.ok(held >= 38 && held < 200, `held ${held} ms`);
    p.handleUdp(dgram(query('www.a.test')), sink);
    await sink.next(2);
    assert.equal(p.stats().holdTimeouts, 1);
    assert.equal(p.stats().learnErrors, 1);
    await p.close();
  });

  test('holds expire each at its own deadline (one timer, re-armed for the next)', async () => {
    const { p } = proxy({ onLearned: () => new Promise<void>(() => {}), holdMs: 60 });
    const sink = new Sink();
    const t0 = performance.now();
    p.handleUdp(dgram(query('a.test', 1)), sink);
    await new Promise((r) => setTimeout(r, 30));
    p.handleUdp(dgram(query('www.a.test', 2)), sink);
    await sink.next(1);
    const first = performance.now() - t0;
    await sink.next(2);
    const second = performance.now() - t0;
    assert.ok(first >= 58 && first < 200, `first released after ${first.toFixed(1)} ms`);
    assert.ok(second >= 88 && second < 250 && second - first >= 25, `second released after ${second.toFixed(1)} ms`);
    assert.equal(p.stats().holdTimeouts, 2);
    await p.close();
  });

  test('upstream failure → SERVFAIL with the question; malformed upstream answer → SERVFAIL', async () => {
    let mode = 'timeout';
    const { p, events } = proxy({
      forwardUdp: async (_d, payload) => {
        if (mode === 'timeout') throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
        return Buffer.concat([answerFor(payload).subarray(0, 20)]);
      },
    });
    const sink = new Sink();
    p.handleUdp(dgram(query('a.test', 1)), sink);
    assert.equal(rcodeOf(dnsPacket.decode(await sink.next())), 'SERVFAIL');
    mode = 'garbage';
    p.handleUdp(dgram(query('a.test', 2)), sink);
    const r = dnsPacket.decode(await sink.next(2));
    assert.equal(rcodeOf(r), 'SERVFAIL');
    assert.equal(r.questions![0]!.name, 'a.test');
    assert.deepEqual(events.filter((e) => e.type === 'response').map((e) => e.reason), ['upstream-timeout', 'upstream-malformed']);
    assert.equal(p.stats().upstreamTimeouts, 1);
    assert.equal(p.stats().upstreamMalformed, 1);
    await p.close();
  });

  test('malformed queries: FORMERR/NOTIMP when the header is readable, dropped otherwise, counted per reason', async () => {
    const { p, forwarded } = proxy();
    const sink = new Sink();
    const twoQuestions = dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'a.test' }, { type: 'A', name: 'b.test' }] });
    const update = Buffer.from(query('a.test'));
    update[2] = (update[2]! & 0x87) | (5 << 3);
    const response = answerFor(query('a.test'));
    p.handleUdp(dgram(twoQuestions), sink);
    p.handleUdp(dgram(update), sink);
    p.handleUdp(dgram(Buffer.from([1, 2, 3])), sink);
    p.handleUdp(dgram(response), sink);
    await sink.next(2);
    assert.deepEqual(sink.replies.map((r) => rcodeOf(dnsPacket.decode(r))), ['FORMERR', 'NOTIMP']);
    const m = p.stats().malformed;
    assert.deepEqual([m['question-count'], m['bad-opcode'], m['short-header'], m['not-a-query']], [1, 1, 1, 1]);
    assert.equal(forwarded.length, 0);
    await p.close();
  });

  test('an answer too large for the client’s UDP size becomes TC=1 (retry over TCP)', async () => {
    const big: dnsPacket.Answer[] = Array.from({ length: 60 }, (_, i) => ({ type: 'A', name: 'a.test', ttl: 30, data: `1.1.${i}.1` }));
    const { p, log } = proxy({
      forwardUdp: async (_d, payload) => {
        const d = dnsPacket.decode(payload);
        return dnsPacket.encode({ type: 'response', id: d.id, questions: d.questions, answers: big });
      },
    });
    const sink = new Sink();
    p.handleUdp(dgram(query('a.test')), sink);
    const r = dnsPacket.decode(await sink.next());
    assert.equal(r.flag_tc, true);
    assert.equal(r.answers?.length, 0);
    assert.equal(log.length, 0);
    await p.close();
  });
});

describe('DnsProxy over TCP', () => {
  /** A fake TCP DNS server answering from ZONE, in reverse order when two queries arrive in one chunk. */
  async function tcpServer(): Promise<net.Server> {
    const s = net.createServer((c) => {
      let buf = Buffer.alloc(0);
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const msgs: Buffer[] = [];
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          msgs.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        for (const m of msgs.reverse()) {
          const a = answerFor(m);
          c.write(Buffer.concat([Buffer.from([a.length >> 8, a.length & 0xff]), a]));
        }
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return s;
  }

  test('several length-prefixed messages on one connection: allowed relayed, denied REFUSED, FORMERR, learned', async () => {
    const upstream = await tcpServer();
    const upPort = (upstream.address() as net.AddressInfo).port;
    const { p, log } = proxy({ allowedFor: () => [compileMatchPattern('*.a.test'), compileMatchPattern('a.test')] });
    const front = net.createServer({ allowHalfOpen: true }, (s) => p.handleTcp(s, { ip: '127.0.0.1', port: upPort }));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const c = net.connect((front.address() as net.AddressInfo).port, '127.0.0.1');
      const frames = [query('a.test', 1), query('denied.test', 2), Buffer.from([0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), query('www.a.test', 4)];
      const answers = new Map<number, dnsPacket.DecodedPacket>();
      let buf = Buffer.alloc(0);
      const done = new Promise<void>((resolve, reject) => {
        c.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            const m = dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)));
            answers.set(m.id!, m);
            buf = buf.subarray(2 + buf.readUInt16BE(0));
          }
        });
        c.on('end', resolve);
        c.on('error', reject);
      });
      // All in one write (pipelined), then half-close: the proxy must still answer everything.
      c.end(Buffer.concat(frames.map((f) => Buffer.concat([Buffer.from([f.length >> 8, f.length & 0xff]), f]))));
      await done;
      assert.equal(dataOf(answers.get(1)?.answers?.[0]), '1.1.1.1');
      assert.equal(rcodeOf(answers.get(2)), 'REFUSED');
      assert.equal(rcodeOf(answers.get(3)), 'FORMERR');
      assert.equal(answers.get(4)?.answers?.length, 3);
      assert.deepEqual(log.sort(), ['learned 127.0.0.1 a.test. 1.1.1.1 30', 'learned 127.0.0.1 www.a.test. 1.1.1.1,2001:db8::1 30']);
    } finally {
      front.close();
      upstream.close();
      await p.close();
    }
  });

  test('one pod holds at most tcpMaxPerSource connections: more are reset, other pods still served; tcpMaxConnections caps them all', async () => {
    const upstream = await tcpServer();
    const upPort = (upstream.address() as net.AddressInfo).port;
    const { p } = proxy({ allowedFor: () => 'all', tcpMaxPerSource: 2, tcpMaxConnections: 3 });
    const front = net.createServer({ allowHalfOpen: true }, (s) => p.handleTcp(s, { ip: '127.0.0.1', port: upPort }));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const port = (front.address() as net.AddressInfo).port;
    /** Connects from `from` and asks once: the answer's first address, or the error that ended it. */
    const ask = (from: string, c = net.connect({ port, host: '127.0.0.1', localAddress: from })): Promise<string> =>
      new Promise((resolve) => {
        const q = query('a.test', 9);
        c.once('data', (d: Buffer) => resolve(String(dataOf(dnsPacket.decode(d.subarray(2)).answers?.[0]))));
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        c.once('close', () => resolve('closed'));
        c.write(Buffer.concat([Buffer.from([0, q.length]), q]));
      });
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
        held.push(c);
        assert.equal(await ask('127.0.0.1', c), '1.1.1.1', `connection ${i + 1} of the pod is served`);
      }
      assert.equal(await ask('127.0.0.1'), 'ECONNRESET', 'the third connection of the same pod is reset');
      assert.equal(await ask('127.0.0.2'), '1.1.1.1', 'another pod is still served');
      assert.equal(p.stats().tcpRefused, 1);
      assert.equal(await ask('127.0.0.3'), 'ECONNRESET', 'three open in all: a third pod is reset too');
      assert.equal(p.stats().tcpRefused, 2);
      held.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(await ask('127.0.0.1'), '1.1.1.1', 'a closed connection frees its place');
    } finally {
      for (const c of held) c.destroy();
      front.close();
      upstream.close();
      await p.close();
    }
  });

  test('an unreachable upstream gives SERVFAIL, not a hang', async () => {
    const { p } = proxy({ allowedFor: () => 'all', upstreamTcp: () => Promise.reject(new Error('ECONNREFUSED')) });
    const front = net.createServer({ allowHalfOpen: true }, (s) => p.handleTcp(s, SERVER));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const c = net.connect((front.address() as net.AddressInfo).port, '127.0.0.1');
      const q = query('a.test', 5);
      const got = new Promise<Buffer>((resolve) => c.once('data', resolve));
      c.write(Buffer.concat([Buffer.from([0, q.length]), q]));
      const m = dnsPacket.decode((await got).subarray(2));
      assert.equal(rcodeOf(m), 'SERVFAIL');
      c.destroy();
    } finally {
      front.close();
      await p.close();
    }
  });
});
