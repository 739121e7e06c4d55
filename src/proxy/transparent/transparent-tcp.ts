/**
 * Transparent TCP sockets for the node's proxies (TPROXY), made through libc
 * with koffi because Node exposes neither IP_TRANSPARENT nor binding a
 * foreign address:
 *
 *   listenTransparent(port) ─► a net.Server whose accepted sockets have the
 *                              pod's ORIGINAL destination as localAddress
 *   connectTransparent(src, dst) ─► a net.Socket to dst whose packets carry
 *                              the client pod's own address as source
 *
 * The datapath steers to the listener (nftables `tproxy`) and diverts the
 * answers of transparent connections back to this node (`socket transparent`).
 *
 * Only steered connections reach a proxy: steering keeps the pod's original
 * destination, so an accepted socket whose local port is a proxy port was
 * addressed to the proxy itself and is reset; and no transparent connection
 * goes out to a proxy port. Either would let one pod make a proxy connect to
 * itself, over and over.
 */
import koffi from 'koffi';
import { createServer, Socket, type Server } from 'node:net';
import { sockaddrIn } from './transparent-udp-libc.ts';
import { errnoName, libcLibrary, socketLibc, type SocketLibc } from '../../kernel/index.ts';
import { addProxyPort, isProxyPort, removeProxyPort } from './proxy-ports.ts';

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const EINPROGRESS = 115;

interface TcpLibc {
  connect(fd: number, addr: Uint8Array, len: number): number;
  listen(fd: number, backlog: number): number;
}

let bound: (TcpLibc & SocketLibc) | undefined;
function c(): TcpLibc & SocketLibc {
  if (bound) return bound;
  const l = libcLibrary();
  const connect = l.func('int connect(int, const void *, uint32_t)');
  const listen = l.func('int listen(int, int)');
  bound = { ...socketLibc(), connect: (fd, a, n) => connect(fd, a, n) as number, listen: (fd, b) => listen(fd, b) as number };
  return bound;
}

function fail(what: string, fd?: number): never {
  const errno = koffi.errno();
  if (fd !== undefined && fd >= 0) c().close(fd);
  throw new Error(`${what}: ${errnoName(errno)}`);
}

function transparentSocket(): number {
  const fd = c().socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket');
  const one = new Int32Array([1]);
  if (c().setsockopt(fd, SOL_IP, IP_TRANSPARENT, one, 4) !== 0) fail('setsockopt(IP_TRANSPARENT) (needs CAP_NET_ADMIN)', fd);
  if (c().setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail('setsockopt(SO_REUSEADDR)', fd);
  return fd;
}

/** A listener that also counts the connections it refused for being addressed to a proxy port directly. */
export interface TransparentServer extends Server {
  readonly notSteered: number;
}

/**
 * A listening socket that accepts connections TPROXY steers to `port` (all
 * addresses). Connections addressed to a proxy port itself are reset before
 * `onConnection` sees them.
 */
export async function listenTransparent(port: number, onConnection: (s: Socket) => void, opts: { allowHalfOpen?: boolean } = {}): Promise<TransparentServer> {
  const fd = transparentSocket();
  if (c().bind(fd, sockaddrIn('0.0.0.0', port), 16) !== 0) fail(`bind 0.0.0.0:${port}`, fd);
  if (c().listen(fd, 1024) !== 0) fail('listen', fd);
  let notSteered = 0;
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? false }, (s) => {
    if (s.localPort !== undefined && isProxyPort(s.localPort)) {
      notSteered++;
      return void s.resetAndDestroy();
    }
    onConnection(s);
  }) as TransparentServer;
  Object.defineProperty(server, 'notSteered', { get: () => notSteered });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => resolve());
  });
  addProxyPort(port);
  server.once('close', () => removeProxyPort(port));
  return server;
}

/**
 * Connects to `dst` from `src` (a pod's address, not this node's): the
 * upstream sees the real client. Resolves once the connection is established.
 */
export function connectTransparent(src: { ip: string; port?: number }, dst: { ip: string; port: number }, timeoutMs = 5000): Promise<Socket> {
  if (isProxyPort(dst.port)) return Promise.reject(new Error(`connect ${dst.ip}:${dst.port}: a proxy port, never an upstream`));
  const fd = transparentSocket();
  if (c().bind(fd, sockaddrIn(src.ip, src.port ?? 0), 16) !== 0) fail(`bind ${src.ip}`, fd);
  const r = c().connect(fd, sockaddrIn(dst.ip, dst.port), 16);
  if (r !== 0 && koffi.errno() !== EINPROGRESS) fail(`connect ${dst.ip}:${dst.port}`, fd);
  // libuv adopts the connecting descriptor; the first write waits for the
  // handshake, and a refused or unreachable connection surfaces as an error.
  const sock = new Socket({ fd, readable: true, writable: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect ${dst.ip}:${dst.port}: timed out`));
    }, timeoutMs);
    // A zero-length write completes when the socket becomes writable: connected.
    sock.write(Buffer.alloc(0), (err) => {
      clearTimeout(timer);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
