/**
 * A UDP packet generator for load tests: sends 16-byte datagrams to HOST:PORT
 * as fast as it can (at most --rate per second) for --seconds, then prints
 * {"sent": N, "seconds": S}, N counting only datagrams the kernel accepted. Runs inside a lab pod's namespace.
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { seconds: { type: 'string', default: '10' }, rate: { type: 'string', default: '0' } } });
const [host = '', portText = ''] = positionals;
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const sock = createSocket('udp4');
const payload = Buffer.alloc(16, 1);
let sent = 0;
let pending = 0;
// Only datagrams the kernel accepted count: a full socket buffer makes a send
// fail (ENOBUFS) before the packet reaches the wire, where it could be logged.
const onSent = (err: Error | null): void => {
  pending--;
  if (!err) sent++;
};
const t0 = Date.now();
const BATCH = 256;

function burst(): void {
  const elapsed = (Date.now() - t0) / 1000;
  if (elapsed >= seconds) {
    const finish = (): void => {
      if (pending > 0) return void setImmediate(finish);
      sock.close();
      console.log(JSON.stringify({ sent, seconds: elapsed }));
    };
    finish();
    return;
  }
  if (rate > 0 && sent + pending >= rate * elapsed) {
    setTimeout(burst, 1);
    return;
  }
  // One 5-tuple: one flow whose every packet policy drops (and the datapath logs).
  for (let i = 0; i < BATCH; i++) {
    pending++;
    sock.send(payload, Number(portText), host, onSent);
  }
  setImmediate(burst);
}
sock.bind(0, () => burst());
