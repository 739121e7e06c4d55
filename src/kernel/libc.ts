/**
 * The libc calls every socket the datapath makes through koffi needs (Node
 * offers no AF_NETLINK, IP_TRANSPARENT or foreign binds), bound once, and
 * errno names for messages. Modules add what only they need from `libcLibrary()`.
 */
import koffi from 'koffi';

export const ERRNO = koffi.os.errno as Readonly<Record<string, number>>;

export function errnoName(errno: number): string {
  for (const [name, v] of Object.entries(ERRNO)) if (v === errno) return name;
  return `errno ${errno}`;
}

let lib: ReturnType<typeof koffi.load> | undefined;

export function libcLibrary(): ReturnType<typeof koffi.load> {
  lib ??= koffi.load('libc.so.6');
  return lib;
}

export interface SocketLibc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  setsockopt(fd: number, level: number, name: number, value: Int32Array, len: number): number;
  close(fd: number): number;
  /** errno of the last call made through these bindings. */
  errno(): number;
}

let sockets: SocketLibc | undefined;

export function socketLibc(): SocketLibc {
  if (sockets) return sockets;
  const l = libcLibrary();
  const socket = l.func('int socket(int domain, int type, int protocol)');
  const bind = l.func('int bind(int fd, const void *addr, uint32_t addrlen)');
  const setsockopt = l.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
  const close = l.func('int close(int fd)');
  sockets = {
    socket: (d, t, p) => socket(d, t, p) as number,
    bind: (fd, a, n) => bind(fd, a, n) as number,
    setsockopt: (fd, lv, n, v, len) => setsockopt(fd, lv, n, v, len) as number,
    close: (fd) => close(fd) as number,
    errno: () => koffi.errno(),
  };
  return sockets;
}
