/**
 * The recvmmsg() vector and sockaddr helpers, without the kernel: the
 * control messages are written by hand as the kernel lays them out (LP64).
 * The kernel side is in transparent-udp-batch.test.ts and
 * transparent-udp-privileged.test.ts; TPROXY in src/proxy/dns/dns-proxy-privileged.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipv4Text, ipv4ToU32, IP_ORIGDSTADDR, SOL_IP, SOL_SOCKET, sockaddrIn, sockaddrIp, sockaddrPort } from './transparent-udp-libc.ts';
import { RecvBatch } from './transparent-udp-mmsg.ts';

function cmsg(batch: RecvBatch, entry: number, at: number, level: number, type: number, data: Uint8Array): number {
  const len = 16 + data.length;
  const base = batch.controlOffset(entry) + at;
  const v = batch.block.view;
  v.setBigUint64(base, BigInt(len), true);
  v.setInt32(base + 8, level, true);
  v.setInt32(base + 12, type, true);
  batch.bytes.set(data, base + 16);
  return at + ((len + 7) & ~7);
}

test('sockaddr_in round trip', () => {
  const sa = sockaddrIn('10.96.0.10', 53);
  assert.deepEqual([...sa.subarray(0, 8)], [2, 0, 0, 53, 10, 96, 0, 10]);
  assert.equal(sockaddrIp(sa, 0), '10.96.0.10');
  assert.equal(sockaddrPort(sa, 0), 53);
  assert.throws(() => sockaddrIn('10.0.0', 1), RangeError);
  assert.throws(() => sockaddrIn('10.0.0.256', 1), RangeError);
});

test('dotted quads: parsed without allocation, interned on the way back', () => {
  const table: Array<[string, number]> = [
    ['0.0.0.0', 0], ['10.96.0.10', 0x0a60000a], ['255.255.255.255', 0xffffffff], ['010.1.1.1', 0x0a010101],
    ['1.2.3', -1], ['1.2.3.4.5', -1], ['1..2.3', -1], ['1.2.3.256', -1], ['1.2.3.1000', -1], ['a.b.c.d', -1], ['', -1], ['::1', -1],
  ];
  for (const [text, u32] of table) assert.equal(ipv4ToU32(text), u32, text);
  assert.equal(ipv4Text(0x0a60000a), '10.96.0.10');
  assert.equal(ipv4Text(0xffffffff), '255.255.255.255');
  assert.equal(ipv4Text(0x0a60000a), ipv4Text(ipv4ToU32('10.96.0.10')));
});

test('IP_ORIGDSTADDR is found among other control messages, per entry; absent or malformed → -1', () => {
  const b = new RecvBatch(4, 64);
  try {
    b.reset(4);
    let end = cmsg(b, 2, 0, SOL_SOCKET, 29, new Uint8Array(4)); // e.g. SO_TIMESTAMP-ish, skipped
    end = cmsg(b, 2, end, SOL_IP, IP_ORIGDSTADDR, sockaddrIn('10.99.0.53', 53));
    b.setControlLength(2, end); // msg_controllen as recvmmsg() leaves it
    const off = b.origDstOffset(2);
    assert.ok(off > 0);
    assert.equal(sockaddrIp(b.bytes, off), '10.99.0.53');
    assert.equal(sockaddrPort(b.bytes, off), 53);

    b.setControlLength(1, 0);
    assert.equal(b.origDstOffset(1), -1, 'no control data');
    cmsg(b, 3, 0, SOL_IP, IP_ORIGDSTADDR, sockaddrIn('1.2.3.4', 1));
    b.block.view.setBigUint64(b.controlOffset(3), 4096n, true); // cmsg_len past the buffer
    b.setControlLength(3, 32);
    assert.equal(b.origDstOffset(3), -1, 'lying cmsg_len');
  } finally {
    b.free();
  }
});

test('reset(n) restores the in/out lengths recvmmsg() changes in the first n entries', () => {
  const b = new RecvBatch(3, 64);
  try {
    const v = b.block.view;
    for (let i = 0; i < 3; i++) {
      v.setUint32(i * 64 + 8, 0, true);
      v.setBigUint64(i * 64 + 40, 0n, true);
      v.setInt32(i * 64 + 48, 0x20, true);
    }
    b.reset(2);
    for (let i = 0; i < 2; i++) {
      assert.equal(v.getUint32(i * 64 + 8, true), 16);
      assert.equal(Number(v.getBigUint64(i * 64 + 40, true)), RecvBatch.CONTROL_BYTES);
      assert.equal(v.getInt32(i * 64 + 48, true), 0);
    }
    assert.equal(v.getUint32(2 * 64 + 8, true), 0, 'entries past n untouched');
  } finally {
    b.free();
  }
});
