/**
 * nfnetlink_log parsing against hand-built netlink datagrams (no kernel).
 * Byte layouts follow include/uapi/linux/netlink.h and
 * include/uapi/linux/netfilter/nfnetlink_log.h; headers in host order
 * (these builders assume little-endian hosts), attribute values big-endian.
 */
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { parseIpPacket, parseNflogMessages, type NflogPacket } from './nflog.ts';
import {
  buildConfigMessage,
  NFULA_GID,
  NFULA_IFINDEX_INDEV,
  NFULA_IFINDEX_OUTDEV,
  NFULA_MARK,
  NFULA_PACKET_HDR,
  NFULA_PAYLOAD,
  NFULA_PREFIX,
  NFULA_SEQ,
  NFULA_TIMESTAMP,
  NFULA_UID,
  NFULNL_CFG_CMD_BIND,
  NFULNL_CFG_F_SEQ,
  NFULNL_COPY_PACKET,
  NLA_F_NET_BYTEORDER,
  NLA_F_NESTED,
  NLMSG_DONE,
  NLMSG_ERROR,
} from './nflog-wire.ts';

assert.equal(endianness(), 'LE', 'these hand-built buffers are little-endian');

// ── builders ───────────────────────────────────────────────────────────────

const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};
const pad4 = (b: Uint8Array): Uint8Array => cat(b, new Uint8Array((4 - (b.length % 4)) % 4));
const be16 = (v: number): Uint8Array => Uint8Array.of(v >> 8, v & 0xff);
const be32 = (v: number): Uint8Array => Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
const be64 = (v: number): Uint8Array => cat(be32(Math.floor(v / 2 ** 32)), be32(v >>> 0));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

function nlmsg(type: number, payload: Uint8Array, seq = 0, lenOverride?: number): Uint8Array {
  const h = new Uint8Array(16);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, lenOverride ?? 16 + payload.length, true);
  dv.setUint16(4, type, true);
  dv.setUint32(8, seq, true);
  return pad4(cat(h, payload));
}
function nla(type: number, data: Uint8Array, lenOverride?: number): Uint8Array {
  const h = new Uint8Array(4);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, lenOverride ?? 4 + data.length, true);
  dv.setUint16(2, type, true);
  return pad4(cat(h, data));
}
const PACKET = 0x0400; // NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET
const nfgen = (family: number, group: number): Uint8Array => cat(Uint8Array.of(family, 0), be16(group));
const packetMsg = (group: number, ...attrs: Uint8Array[]): Uint8Array => nlmsg(PACKET, cat(nfgen(2, group), ...attrs));
function errMsg(seq: number, error: number): Uint8Array {
  const e = new Uint8Array(4 + 16);
  new DataView(e.buffer).setInt32(0, error, true);
  return nlmsg(NLMSG_ERROR, e, seq);
}

const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

function ipv4(
  proto: number,
  l4: Uint8Array,
  o: { src?: number[]; dst?: number[]; options?: number; frag?: number } = {},
): Uint8Array {
  const ihl = 5 + (o.options ?? 0);
  const h = new Uint8Array(ihl * 4);
  h[0] = 0x40 | ihl;
  h.set(be16(ihl * 4 + l4.length), 2);
  h.set(be16(o.frag ?? 0x4000), 6); // DF, offset 0
  h[8] = 64;
  h[9] = proto;
  h.set(o.src ?? [10, 250, 0, 2], 12);
  h.set(o.dst ?? [10, 250, 0, 1], 16);
  return cat(h, l4);
}
function tcp(sport: number, dport: number, flags: number): Uint8Array {
  const t = new Uint8Array(20);
  t.set(be16(sport), 0);
  t.set(be16(dport), 2);
  t[12] = 5 << 4;
  t[13] = flags;
  return t;
}
const udp = (sport: number, dport: number): Uint8Array => cat(be16(sport), be16(dport), be16(8), be16(0));
const icmp = (type: number, code: number): Uint8Array => Uint8Array.of(type, code, 0, 0, 0, 1, 0, 1);

function parseAll(buf: Uint8Array): { packets: NflogPacket[]; malformed: string[]; acks: Array<[number, number]> } {
  const packets: NflogPacket[] = [];
  const malformed: string[] = [];
  const acks: Array<[number, number]> = [];
  parseNflogMessages(
    buf,
    (p) => packets.push(p),
    (r) => malformed.push(r),
    (s, e) => acks.push([s, e]),
  );
  return { packets, malformed, acks };
}

const synPayload = ipv4(6, tcp(40000, 9, TCP.SYN));
const fullPacket = packetMsg(
  7,
  nla(NFULA_PACKET_HDR, cat(be16(0x0800), Uint8Array.of(3, 0))),
  nla(NFULA_MARK, be32(0x2a)),
  nla(NFULA_TIMESTAMP, cat(be64(1_700_000_000), be64(123_456))),
  nla(NFULA_IFINDEX_INDEV, be32(4)),
  nla(NFULA_IFINDEX_OUTDEV, be32(5)),
  nla(NFULA_UID, be32(1000)),
  nla(NFULA_GID, be32(1001)),
  nla(NFULA_SEQ, be32(17)),
  nla(NFULA_PREFIX, ascii('palisade-drop\0')),
  nla(NFULA_PAYLOAD, synPayload),
);

// ── parseNflogMessages ─────────────────────────────────────────────────────

describe('parseNflogMessages', () => {
  test('one packet message: every attribute', () => {
    const { packets, malformed } = parseAll(fullPacket);
    assert.deepEqual(malformed, []);
    assert.equal(packets.length, 1);
    const p = packets[0]!;
    assert.equal(p.group, 7);
    assert.equal(p.family, 2);
    assert.equal(p.prefix, 'palisade-drop');
    assert.equal(p.mark, 0x2a);
    assert.equal(p.hook, 3);
    assert.equal(p.hwProtocol, 0x0800);
    assert.equal(p.timestampNs, 1_700_000_000n * 1_000_000_000n + 123_456_000n);
    assert.equal(p.indev, 4);
    assert.equal(p.outdev, 5);
    assert.equal(p.uid, 1000);
    assert.equal(p.gid, 1001);
    assert.equal(p.seq, 17);
    assert.equal(p.payloadLength, synPayload.length);
    assert.equal(p.ip?.protocol, 'TCP');
    assert.equal(p.ip?.dstPort, 9);
    assert.equal(p.ip?.tcpFlags, TCP.SYN);
  });

  test('several messages in one datagram, with ACK and DONE between them', () => {
    const buf = cat(
      packetMsg(7, nla(NFULA_PREFIX, ascii('a\0'))),
      errMsg(41, 0),
      packetMsg(7, nla(NFULA_PREFIX, ascii('b\0'))),
      nlmsg(NLMSG_DONE, new Uint8Array(4)),
      packetMsg(8, nla(NFULA_PREFIX, ascii('c\0'))),
      errMsg(42, -16),
    );
    const { packets, malformed, acks } = parseAll(buf);
    assert.deepEqual(malformed, []);
    assert.deepEqual(
      packets.map((p) => [p.group, p.prefix]),
      [
        [7, 'a'],
        [7, 'b'],
        [8, 'c'],
      ],
    );
    assert.deepEqual(acks, [
      [41, 0],
      [42, -16], // -EBUSY
    ]);
  });

  test('defaults when optional attributes are absent', () => {
    const { packets } = parseAll(packetMsg(3));
    assert.equal(packets.length, 1);
    const p = packets[0]!;
    assert.equal(p.prefix, '');
    assert.equal(p.mark, 0);
    assert.equal(p.timestampNs, undefined);
    assert.equal(p.ip, undefined);
    assert.equal(p.payloadLength, 0);
  });

  const prefixCases: Array<[string, Uint8Array, string]> = [
    ['NUL-terminated', ascii('tag\0'), 'tag'],
    ['without NUL (bounded by the attribute)', ascii('tag'), 'tag'],
    ['bytes after the NUL ignored', ascii('tag\0junk'), 'tag'],
    ['empty', ascii('\0'), ''],
    ['UTF-8', ascii('drop→x\0'), 'drop→x'],
  ];
  for (const [name, bytes, want] of prefixCases) {
    test(`prefix: ${name}`, () => {
      const { packets, malformed } = parseAll(packetMsg(1, nla(NFULA_PREFIX, bytes)));
      assert.deepEqual(malformed, []);
      assert.equal(packets[0]?.prefix, want);
    });
  }

  test('NLA_F_NESTED / NLA_F_NET_BYTEORDER bits are masked off the attribute type', () => {
    const { packets } = parseAll(
      packetMsg(1, nla(NFULA_PREFIX | NLA_F_NET_BYTEORDER, ascii('x\0')), nla(NFULA_MARK | NLA_F_NESTED, be32(9))),
    );
    assert.equal(packets[0]?.prefix, 'x');
    assert.equal(packets[0]?.mark, 9);
  });

  test('unknown attributes are skipped', () => {
    const { packets, malformed } = parseAll(packetMsg(1, nla(99, ascii('whatever')), nla(NFULA_MARK, be32(1))));
    assert.deepEqual(malformed, []);
    assert.equal(packets[0]?.mark, 1);
  });

  // Each case: the datagram, how many packets still come out, the malformed reasons.
  const malformedCases: Array<[string, Uint8Array, number, string[]]> = [
    [
      'attribute longer than its message drops that message only',
      cat(packetMsg(1, nla(NFULA_MARK, be32(1), 40)), packetMsg(2)),
      1,
      ['bad attribute length'],
    ],
    ['attribute length below the header size', packetMsg(1, nla(NFULA_MARK, be32(1), 2)), 0, ['bad attribute length']],
    ['short NFULA_MARK', packetMsg(1, nla(NFULA_MARK, Uint8Array.of(1, 2))), 0, ['short NFULA_MARK']],
    ['short NFULA_TIMESTAMP', packetMsg(1, nla(NFULA_TIMESTAMP, be64(1))), 0, ['short NFULA_TIMESTAMP']],
    ['short NFULA_PACKET_HDR', packetMsg(1, nla(NFULA_PACKET_HDR, be16(0x800))), 0, ['short NFULA_PACKET_HDR']],
    ['message too short for nfgenmsg', nlmsg(PACKET, Uint8Array.of(2, 0)), 0, ['short nfgenmsg']],
    ['nlmsg_len beyond the datagram stops the walk', cat(packetMsg(1), nlmsg(PACKET, nfgen(2, 2), 0, 400)), 1, ['bad nlmsg_len']],
    ['nlmsg_len below the header size', nlmsg(PACKET, nfgen(2, 2), 0, 8), 0, ['bad nlmsg_len']],
    ['trailing bytes shorter than a header', cat(packetMsg(1), new Uint8Array(8)), 1, ['truncated netlink header']],
    ['datagram cut inside a message', fullPacket.subarray(0, fullPacket.length - 12), 0, ['bad nlmsg_len']],
    ['short NLMSG_ERROR', nlmsg(NLMSG_ERROR, new Uint8Array(0)), 0, ['short nlmsgerr']],
  ];
  for (const [name, buf, nPackets, reasons] of malformedCases) {
    test(`malformed: ${name}`, () => {
      const { packets, malformed } = parseAll(buf);
      assert.equal(packets.length, nPackets);
      assert.deepEqual(malformed, reasons);
    });
  }

  test('an attribute header cut by the message end', () => {
    // A message whose length leaves 2 bytes after the last attribute.
    const body = cat(nfgen(2, 1), nla(NFULA_MARK, be32(1)), Uint8Array.of(0, 0, 0, 0));
    const msg = nlmsg(PACKET, body, 0, 16 + body.length - 2);
    const { packets, malformed } = parseAll(msg);
    assert.equal(packets.length, 0);
    assert.deepEqual(malformed, ['truncated attribute header']);
  });

  test('never throws on random bytes', () => {
    let seed = 1;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed & 0xff);
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from({ length: (i % 97) + 1 }, rnd);
      if (i % 3 === 0 && b.length >= 16) b.set(Uint8Array.of(b.length, 0, 0, 0, 0x00, 0x04), 0);
      parseNflogMessages(b, () => {}, () => {});
    }
  });
});

// ── parseIpPacket ──────────────────────────────────────────────────────────

describe('parseIpPacket', () => {
  const flagCases: Array<[string, number, Partial<Record<keyof typeof TCP, boolean>>]> = [
    ['SYN', TCP.SYN, { SYN: true }],
    ['SYN-ACK', TCP.SYN | TCP.ACK, { SYN: true, ACK: true }],
    ['FIN-ACK', TCP.FIN | TCP.ACK, { FIN: true, ACK: true }],
    ['RST', TCP.RST, { RST: true }],
    ['PSH-ACK', TCP.PSH | TCP.ACK, { PSH: true, ACK: true }],
    ['URG', TCP.URG, { URG: true }],
  ];
  for (const [name, bits, want] of flagCases) {
    test(`TCP flags: ${name}`, () => {
      const ip = parseIpPacket(ipv4(6, tcp(1234, 80, bits)));
      assert.ok(ip?.tcpFlags !== undefined);
      for (const k of Object.keys(TCP) as Array<keyof typeof TCP>) assert.equal((ip.tcpFlags & TCP[k]) !== 0, want[k] ?? false, k);
    });
  }

  test('TCP header fields', () => {
    assert.deepEqual(parseIpPacket(ipv4(6, tcp(40000, 9, TCP.SYN), { src: [192, 168, 1, 2], dst: [10, 0, 0, 255] })), {
      src: '192.168.1.2',
      dst: '10.0.0.255',
      protocol: 'TCP',
      length: 40,
      ttl: 64,
      srcPort: 40000,
      dstPort: 9,
      tcpFlags: TCP.SYN,
      icmpType: undefined,
      icmpCode: undefined,
    });
  });

  const cases: Array<[string, Uint8Array, Record<string, unknown> | undefined]> = [
    ['UDP ports', ipv4(17, udp(5353, 53)), { protocol: 'UDP', srcPort: 5353, dstPort: 53, tcpFlags: undefined }],
    ['ICMP echo request', ipv4(1, icmp(8, 0)), { protocol: 'ICMP', icmpType: 8, icmpCode: 0, srcPort: undefined }],
    ['ICMP port unreachable', ipv4(1, icmp(3, 3)), { protocol: 'ICMP', icmpType: 3, icmpCode: 3 }],
    ['other protocol as a number', ipv4(47, new Uint8Array(4)), { protocol: 47, srcPort: undefined }],
    ['IP options (IHL 7) are skipped', ipv4(17, udp(1, 2), { options: 2 }), { srcPort: 1, dstPort: 2 }],
    ['non-first fragment has no L4 header', ipv4(17, udp(1, 2), { frag: 0x0010 }), { srcPort: undefined }],
    ['first fragment (MF) keeps ports', ipv4(17, udp(1, 2), { frag: 0x2000 }), { srcPort: 1 }],
    ['TCP cut after the ports', ipv4(6, tcp(7, 8, TCP.SYN)).subarray(0, 24), { srcPort: 7, dstPort: 8, tcpFlags: undefined }],
    ['L4 header missing entirely', ipv4(6, new Uint8Array(0)), { protocol: 'TCP', srcPort: undefined }],
    ['IPv6 is not parsed', Uint8Array.from({ length: 40 }, (_, i) => (i === 0 ? 0x60 : 0)), undefined],
    ['shorter than an IPv4 header', ipv4(17, udp(1, 2)).subarray(0, 19), undefined],
    ['IHL below 5', Uint8Array.from(ipv4(17, udp(1, 2)), (b, i) => (i === 0 ? 0x44 : b)), undefined],
    ['IHL beyond the bytes', Uint8Array.from(ipv4(17, udp(1, 2)).subarray(0, 24), (b, i) => (i === 0 ? 0x4f : b)), undefined],
  ];
  for (const [name, buf, want] of cases) {
    test(name, () => {
      const ip = parseIpPacket(buf);
      if (want === undefined) return assert.equal(ip, undefined);
      assert.ok(ip);
      for (const [k, v] of Object.entries(want)) assert.deepEqual((ip as unknown as Record<string, unknown>)[k], v, k);
    });
  }
});

// ── buildConfigMessage ─────────────────────────────────────────────────────

test('buildConfigMessage: BIND with settings in one request', () => {
  const m = buildConfigMessage(5, 0, 7, {
    cmd: NFULNL_CFG_CMD_BIND,
    copyMode: NFULNL_COPY_PACKET,
    copyRange: 128,
    qthresh: 1,
    flags: NFULNL_CFG_F_SEQ,
  });
  const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
  assert.equal(dv.getUint32(0, true), m.length);
  assert.equal(dv.getUint16(4, true), 0x0401); // NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG
  assert.equal(dv.getUint16(6, true), 0x1 | 0x4); // NLM_F_REQUEST | NLM_F_ACK
  assert.equal(dv.getUint32(8, true), 5);
  assert.deepEqual([...m.subarray(16, 20)], [0, 0, 0, 7]); // nfgenmsg: AF_UNSPEC, v0, res_id be16 7
  // Attributes: CMD (len 5, padded to 8), MODE (len 10: be32 range + u8 mode + pad, padded to 12),
  // QTHRESH (len 8), FLAGS (len 6, padded to 8).
  assert.deepEqual([...m.subarray(20, 28)], [5, 0, 1, 0, 1, 0, 0, 0]);
  assert.deepEqual([...m.subarray(28, 40)], [10, 0, 2, 0, 0, 0, 0, 128, 2, 0, 0, 0]);
  assert.deepEqual([...m.subarray(40, 48)], [8, 0, 5, 0, 0, 0, 0, 1]);
  assert.deepEqual([...m.subarray(48, 56)], [6, 0, 6, 0, 0, 1, 0, 0]);
  assert.equal(m.length, 56);
});

// ── micro-benchmark (reported, not asserted) ───────────────────────────────

test('benchmark: parse rate of one-packet datagrams', (t) => {
  let n = 0;
  const onPacket = (): void => void n++;
  const onMalformed = (): void => {};
  const rounds = 200_000;
  for (let i = 0; i < 20_000; i++) parseNflogMessages(fullPacket, onPacket, onMalformed); // warm-up
  n = 0;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) parseNflogMessages(fullPacket, onPacket, onMalformed);
  const ms = performance.now() - t0;
  assert.equal(n, rounds);
  t.diagnostic(`parseNflogMessages + parseIpPacket: ${Math.round(rounds / (ms / 1000)).toLocaleString('en')} packets/s (${((ms * 1e6) / rounds).toFixed(0)} ns/packet)`);
});
