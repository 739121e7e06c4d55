/**
 * The upstream socket when no faster one is handed in: Node's dgram, one
 * send request per datagram. What unit tests and tools without the datapath use.
 */
import dgram from 'node:dgram';
import { constants } from 'node:os';
import type { OpenUpstreamSocket, UpstreamSocket } from './dns-types.ts';

export const openDgramSocket: OpenUpstreamSocket = (onDatagram, opts) => {
  // dgram has no IP_TRANSPARENT: refuse rather than send from the node's address.
  if (opts.source !== undefined) throw new Error(`dgram sockets cannot send from ${opts.source} (no IP_TRANSPARENT): pass the datapath's openUdpFrom`);
  const s = dgram.createSocket({
    type: 'udp4',
    ...(opts.recvBufferBytes !== undefined ? { recvBufferSize: opts.recvBufferBytes } : {}),
    ...(opts.sendBufferBytes !== undefined ? { sendBufferSize: opts.sendBufferBytes } : {}),
  });
  s.on('message', (msg, rinfo) => onDatagram(msg, { ip: rinfo.address, port: rinfo.port }));
  s.on('error', () => {}); // per-send failures arrive through the send callback
  s.bind(0);
  let closed = false;
  const socket: UpstreamSocket = {
    get port() {
      return closed ? 0 : s.address().port;
    },
    send(ip, port, payload, token = 0) {
      // dgram copies the bytes before send() returns, as the batched socket does.
      s.send(Buffer.from(payload), port, ip, (err) => {
        if (err && opts.onSendError) opts.onSendError(token, errnoOf(err));
      });
    },
    unref: () => void s.unref(),
    close() {
      if (closed) return;
      closed = true;
      s.close();
    },
  };
  return socket;
};

function errnoOf(err: Error): number {
  const code = (err as NodeJS.ErrnoException).code;
  return (code && (constants.errno as Record<string, number>)[code]) || 0;
}
