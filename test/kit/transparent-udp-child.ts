/**
 * Child process for transparent-udp-privileged.test.ts, run inside a test
 * network namespace (`ip netns exec pl-tu… node transparent-udp-test-child.ts`):
 *
 *   burst <senders> <per-sender>
 *     a transparent listener on 0.0.0.0:0 answering every datagram with
 *     reply() (so from a reply socket bound to 127.0.0.1:PORT), and
 *     <senders> plain sockets each sending <per-sender> datagrams to
 *     127.0.0.1:PORT in one synchronous burst. Prints one JSON line:
 *     {port, received: [{payload, src, origDst}], delivery turns, answers
 *     per sender: [{payload, from}], stats}.
 */
import { openTransparentUdp, openUdp, type TransparentDatagram, type UdpEndpoint, type UdpSocket } from '../../src/proxy/transparent/transparent-udp.ts';

const [mode, sendersText, perText] = process.argv.slice(2);
if (mode !== 'burst') throw new Error(`unknown mode ${mode}`);
const senders = Number(sendersText);
const per = Number(perText);
const total = senders * per;

const received: Array<{ payload: string; src: UdpEndpoint; origDst: UdpEndpoint }> = [];
/** How many event-loop turns the listener needed to see the whole burst. */
let turns = 0;
let turnOpen = false;
const udp = await openTransparentUdp(
  0,
  (d: TransparentDatagram) => {
    if (!turnOpen) {
      turnOpen = true;
      turns++;
      setImmediate(() => (turnOpen = false));
    }
    received.push({ payload: d.payload.toString(), src: d.src, origDst: d.origDst });
    udp.reply(d, Buffer.from(`re:${d.payload.toString()}`));
  },
  // Sent to the port directly (no TPROXY here): not a proxy's listener, which would drop them.
  { recvBufferBytes: 4 << 20, proxyListener: false },
);

const answers: Array<Array<{ payload: string; from: UdpEndpoint }>> = [];
const socks: UdpSocket[] = [];
for (let k = 0; k < senders; k++) {
  const got: Array<{ payload: string; from: UdpEndpoint }> = [];
  answers.push(got);
  socks.push(openUdp((payload, from) => got.push({ payload: payload.toString(), from }), { recvBufferBytes: 1 << 20 }));
}
for (let i = 0; i < per; i++) for (let k = 0; k < senders; k++) socks[k]!.sendNow('127.0.0.1', udp.port, Buffer.from(`s${k}-${i}`));

const deadline = Date.now() + 5000;
while (answers.reduce((n, a) => n + a.length, 0) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
await udp.close();
for (const s of socks) s.close();
process.stdout.write(JSON.stringify({ port: udp.port, senderPorts: socks.map((s) => s.port), received, turns, answers, stats: udp.stats }) + '\n');
