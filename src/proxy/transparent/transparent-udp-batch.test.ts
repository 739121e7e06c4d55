/**
 * openUdp's batches against the real kernel, on loopback (plain sockets,
 * no privilege, nothing configured): a burst queued before the socket is
 * read arrives in one wakeup (recvmmsg), queued sends leave in order
 * (sendmmsg, and sendto for one too large for the vector), and a datagram
 * the kernel refuses comes back to onSendError with its token.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERRNO } from '../../kernel/index.ts';
import { openUdp, type UdpEndpoint, type UdpSocket } from './transparent-udp.ts';

interface Got {
  payload: Buffer;
  from: UdpEndpoint;
}

function receiver(): { s: UdpSocket; got: Got[]; waitFor(n: number): Promise<void> } {
  const got: Got[] = [];
  let wake: (() => void) | undefined;
  const s = openUdp(
    (payload, from) => {
      got.push({ payload, from });
      wake?.();
    },
    { recvBufferBytes: 1 << 20 }, // room for a whole burst
  );
  return {
    s,
    got,
    waitFor: async (n) => {
      const deadline = Date.now() + 3000;
      while (got.length < n) {
        if (Date.now() > deadline) throw new Error(`got ${got.length} of ${n} datagrams`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    },
  };
}

const datagram = (i: number, size = 40): Buffer => Buffer.alloc(size, i & 0xff).fill(`#${i}#`, 0, 8);

test('a burst queued before the socket is read arrives whole, in order, in one wakeup', async () => {
  const rx = receiver();
  const tx = openUdp(() => {});
  try {
    for (let i = 0; i < 200; i++) assert.ok(tx.sendNow('127.0.0.1', rx.s.port, datagram(i)));
    // One readiness event drains up to 256 datagrams: the first delivery and the last happen in the same turn.
    await rx.waitFor(1);
    assert.equal(rx.got.length, 200, 'the whole burst in the turn that delivered the first datagram');
    rx.got.forEach((g, i) => {
      assert.deepEqual(g.payload, datagram(i));
      assert.deepEqual(g.from, { ip: '127.0.0.1', port: tx.port });
    });
  } finally {
    tx.close();
    rx.s.close();
  }
});

test('queued sends leave in order at the end of the turn, a large one (> 4096 bytes) among them', async () => {
  const rx = receiver();
  const tx = openUdp(() => {});
  try {
    const sent: Buffer[] = [];
    for (let i = 0; i < 150; i++) {
      const d = datagram(i, i === 70 ? 9000 : 40 + (i % 7));
      sent.push(d);
      tx.send('127.0.0.1', rx.s.port, d, i);
    }
    assert.equal(rx.got.length, 0, 'nothing has left before the turn ends');
    await rx.waitFor(150);
    assert.deepEqual(rx.got.map((g) => g.payload), sent);
  } finally {
    tx.close();
    rx.s.close();
  }
});

test('a datagram the kernel refuses goes to onSendError with its token; the others leave', async () => {
  const rx = receiver();
  const errors: Array<[number, number]> = [];
  // Broadcast without SO_BROADCAST: refused with EACCES before anything is sent.
  const tx = openUdp(() => {}, { onSendError: (token, errno) => errors.push([token, errno]) });
  try {
    tx.send('127.0.0.1', rx.s.port, datagram(1), 1);
    tx.send('255.255.255.255', rx.s.port, datagram(2), 2);
    tx.send('127.0.0.1', rx.s.port, datagram(3), 3);
    await rx.waitFor(2);
    assert.deepEqual(errors, [[2, ERRNO['EACCES']]]);
    assert.deepEqual(rx.got.map((g) => g.payload), [datagram(1), datagram(3)]);
    assert.throws(() => tx.send('not-an-ip', 53, datagram(4)), RangeError);
  } finally {
    tx.close();
    rx.s.close();
  }
});

test('close() sends what is queued, then drops later sends', async () => {
  const rx = receiver();
  const tx = openUdp(() => {});
  try {
    tx.send('127.0.0.1', rx.s.port, datagram(1));
    tx.close();
    tx.send('127.0.0.1', rx.s.port, datagram(2));
    await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(rx.got.map((g) => g.payload), [datagram(1)]);
  } finally {
    rx.s.close();
  }
});
