/**
 * Readiness of a socket made through libc, from libuv (koffi.node.poll), for
 * the datapath's netlink and transparent sockets.
 *
 * libuv stops a poll handle for good when poll() reports POLLERR (a netlink
 * socket reports a pending ENOBUFS that way): on an error status we still read
 * (which clears it) and start the handle again.
 *
 * koffi calls the poll callback straight from libuv, outside Node's callback
 * scope, so neither process.nextTick nor promise continuations run after it;
 * work started from that callback would sit until some unrelated callback
 * drained the queues (measured: DNS answers stalled for seconds under load).
 * So the callback only schedules `onReadable` with setImmediate (same loop
 * iteration, queues drained after it), at most once per wake.
 */
import koffi from 'koffi';

export function watchReadable(fd: number, onReadable: () => void): { close(): void; unref(): void } {
  let closed = false;
  let scheduled = false;
  const run = (): void => {
    scheduled = false;
    if (!closed) onReadable();
  };
  // koffi's typings omit the status argument the callback really receives first.
  const onEvent = ((status: number) => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(run);
    }
    if (status < 0 && !closed) handle.start({ readable: true }, onEvent);
  }) as unknown as Parameters<typeof koffi.node.poll>[1];
  const handle = koffi.node.poll(fd, { readable: true }, onEvent);
  return {
    close: () => {
      closed = true;
      handle.close();
    },
    /** The watch alone will not keep the process alive (as dgram's socket.unref()). */
    unref: () => handle.unref(),
  };
}
