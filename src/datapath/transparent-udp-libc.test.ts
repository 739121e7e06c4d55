/**
 * The recvmsg() block and sockaddr helpers, without the kernel: the control
 * messages are written by hand as the kernel lays them out (LP64). The real
 * TPROXY path is exercised by src/fqdn/dns-proxy-privileged.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IP_ORIGDSTADDR, RecvBlock, SOL_IP, SOL_SOCKET, sockaddrIn, sockaddrIp, sockaddrPort } from './transparent-udp-libc.ts';

function cmsg(block: RecvBlock, at: number, level: number, type: number, data: Uint8Array): number {
  const len = 16 + data.length;
  block.view.setBigUint64(RecvBlock.CONTROL + at, BigInt(len), true);
  block.view.setInt32(RecvBlock.CONTROL + at + 8, level, true);
  block.view.setInt32(RecvBlock.CONTROL + at + 12, type, true);
  block.bytes.set(data, RecvBlock.CONTROL + at + 16);
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

test('IP_ORIGDSTADDR is found among other control messages; absent or malformed → -1', () => {
  const b = new RecvBlock(64);
  try {
    b.reset();
    let end = cmsg(b, 0, SOL_SOCKET, 29, new Uint8Array(4)); // e.g. SO_TIMESTAMP-ish, skipped
    end = cmsg(b, end, SOL_IP, IP_ORIGDSTADDR, sockaddrIn('10.99.0.53', 53));
    b.view.setBigUint64(40, BigInt(end), true); // msg_controllen as recvmsg() leaves it
    const off = b.origDstOffset();
    assert.ok(off > 0);
    assert.equal(sockaddrIp(b.bytes, off), '10.99.0.53');
    assert.equal(sockaddrPort(b.bytes, off), 53);

    b.view.setBigUint64(40, 0n, true);
    assert.equal(b.origDstOffset(), -1, 'no control data');
    cmsg(b, 0, SOL_IP, IP_ORIGDSTADDR, sockaddrIn('1.2.3.4', 1));
    b.view.setBigUint64(RecvBlock.CONTROL, 4096n, true); // cmsg_len past the buffer
    b.view.setBigUint64(40, 32n, true);
    assert.equal(b.origDstOffset(), -1, 'lying cmsg_len');
  } finally {
    b.free();
  }
});

test('reset() restores the in/out lengths recvmsg() changes', () => {
  const b = new RecvBlock(64);
  try {
    b.view.setUint32(8, 0, true);
    b.view.setBigUint64(40, 0n, true);
    b.reset();
    assert.equal(b.view.getUint32(8, true), 16);
    assert.equal(Number(b.view.getBigUint64(40, true)), RecvBlock.CONTROL_BYTES);
    assert.equal(b.flags, 0);
  } finally {
    b.free();
  }
});
