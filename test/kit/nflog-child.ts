/**
 * Child process for nflog-privileged.test.ts, run inside a test network
 * namespace (`ip netns exec pl-nf… node nflog-test-child.ts …`).
 *
 *   read <group> [--summary] [--buffer-bytes N] [--probe <addr>:<port>]
 *       opens the reader, prints {"ready":true}, then one JSON line per packet
 *       (or nothing per packet with --summary); on SIGTERM prints
 *       {"summary":{stats…, firstMs, lastMs, probes, lostReported}} and exits.
 *       With --probe, each time the reader drains after an overrun it sends
 *       one UDP datagram there (a logged port makes it the probe).
 *   open-twice <group>
 *       prints {"error": "..."} from binding a group that is already bound.
 *   flood <addr> <port> <count>
 *       sends <count> 16-byte UDP datagrams as fast as it can, prints {"sent":n,"ms":t}.
 *       (Unanswered: the port is closed; the ICMP errors it causes are rate-limited.)
 */
import koffi from 'koffi';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { openNflog, type NflogPacket } from '../../src/datapath/legacy/nflog.ts';

const [mode, ...args] = process.argv.slice(2);

const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

async function read(): Promise<void> {
  const group = Number(args[0]);
  const summary = args.includes('--summary');
  const bi = args.indexOf('--buffer-bytes');
  const bufferBytes = bi >= 0 ? Number(args[bi + 1]) : undefined;
  let firstMs = 0;
  let lastMs = 0;
  const onPacket = (p: NflogPacket): void => {
    lastMs = performance.now();
    if (firstMs === 0) firstMs = lastMs;
    if (!summary) process.stdout.write(json({ packet: p }) + '\n');
  };
  const pi = args.indexOf('--probe');
  const [probeAddr, probePort] = pi >= 0 ? args[pi + 1]!.split(':') : [];
  const probeSocket = createSocket('udp4');
  let probes = 0;
  let lostReported = 0;
  const reader = await openNflog(group, onPacket, {
    ...(bufferBytes === undefined ? {} : { bufferBytes }),
    onLost: (n) => (lostReported += n),
    ...(probeAddr === undefined
      ? {}
      : {
          onDrainedAfterOverrun: () => {
            probes++;
            probeSocket.send(Buffer.alloc(1), Number(probePort), probeAddr);
          },
        }),
  });
  // The reader closes itself on an unexpected socket error; say so instead of exiting quietly.
  const check = setInterval(() => {
    if (reader.error) process.stdout.write(json({ fatal: reader.error.message, stats: reader.stats }) + '\n');
  }, 100);
  process.on('SIGTERM', () => {
    clearInterval(check);
    void reader.close().then(() => {
      process.stdout.write(json({ summary: { ...reader.stats, firstMs, lastMs, probes, lostReported, error: reader.error?.message } }) + '\n', () =>
        process.exit(0),
      );
    });
  });
  process.stdout.write(json({ ready: true }) + '\n');
}

async function openTwice(): Promise<void> {
  const group = Number(args[0]);
  const first = await openNflog(group, () => {});
  try {
    await openNflog(group, () => {});
    process.stdout.write(json({ error: null }) + '\n');
  } catch (e) {
    process.stdout.write(json({ error: (e as Error).message }) + '\n');
  } finally {
    await first.close();
  }
}

async function flood(): Promise<void> {
  // A synchronous sendto() loop (unconnected, so the port-unreachable
  // replies do not turn into ECONNREFUSED) through libc: far faster than dgram's per-send
  // callbacks, so the reader, not the sender, is what a burst measures.
  const [addr, port, count] = [args[0]!, Number(args[1]), Number(args[2])];
  const libc = koffi.load('libc.so.6');
  const socket = libc.func('int socket(int, int, int)');
  const sendto = libc.func('intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)');
  const close = libc.func('int close(int)');
  const fd = socket(2, 2, 0) as number; // AF_INET, SOCK_DGRAM
  const sa = new Uint8Array(16); // struct sockaddr_in
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, 2, true);
  dv.setUint16(2, port, false);
  sa.set(addr.split('.').map(Number), 4);
  if (fd < 0) throw new Error(`flood: socket failed, errno ${koffi.errno()}`);
  const payload = new Uint8Array(16);
  const t0 = performance.now();
  let sent = 0;
  for (let i = 0; i < count; i++) if (Number(sendto(fd, payload, payload.length, 0, sa, 16)) === payload.length) sent++;
  const ms = performance.now() - t0;
  close(fd);
  process.stdout.write(json({ sent, ms }) + '\n');
}

const modes: Record<string, () => Promise<void>> = { read, 'open-twice': openTwice, flood };
const run = mode === undefined ? undefined : modes[mode];
if (!run) {
  process.stderr.write(`usage: nflog-test-child.ts read|open-twice|flood …\n`);
  process.exit(2);
}
run().catch((e: unknown) => {
  process.stdout.write(json({ fatal: (e as Error).message }) + '\n');
  process.exit(1);
});
