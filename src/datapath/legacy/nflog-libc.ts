/**
 * The few libc calls an NFLOG reader needs, through koffi (Node has no
 * AF_NETLINK sockets). Every call here is non-blocking: the socket is opened
 * with SOCK_NONBLOCK and readiness comes from libuv (`koffi.node.poll`), so
 * nothing ever waits on a worker thread or stalls the event loop.
 */
import koffi from 'koffi';
import { watchReadable, libcLibrary, socketLibc } from '../../kernel/index.ts';

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_NETFILTER = 12;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;

/** What the reader needs of libc: declared narrowly so a fake costs nothing. */
export interface NetlinkLibc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  setsockopt(fd: number, level: number, name: number, value: Int32Array, len: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  close(fd: number): number;
  /** errno of the last call made through these bindings. */
  errno(): number;
  /** Calls `onReadable` from the event loop whenever `fd` is readable (level-triggered). */
  watchReadable(fd: number, onReadable: () => void): { close(): void };
}

export { ERRNO } from '../../kernel/index.ts';

let bound: NetlinkLibc | undefined;

export function netlinkLibc(): NetlinkLibc {
  if (bound) return bound;
  const libc = libcLibrary();
  const send = libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
  const recv = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
  bound = {
    ...socketLibc(),
    send: (fd, b, l, f) => Number(send(fd, b, l, f)),
    recv: (fd, b, l, f) => Number(recv(fd, b, l, f)),
    watchReadable,
  };
  return bound;
}


export { errnoName } from '../../kernel/index.ts';
