/**
 * Kernel plumbing every part may need, free of Palisade's policy: running
 * `ip`/`nft` (exec.ts), network namespaces (netns.ts), libc through koffi
 * (libc.ts), readiness of a raw fd in libuv's loop (libuv-poll.ts), and the
 * guard that keeps datapath code out of the machine's root namespace.
 */
export { netnsExists, sysctlIn, createNetns, deleteNetns, listNetns, netnsPath, netnsPids, processNetns } from './netns.ts';
export { run, ipBatch, nft, CommandError } from './exec.ts';
export { assertNotRootNetns } from './root-guard.ts';
export { ERRNO, errnoName, libcLibrary, socketLibc, type SocketLibc } from './libc.ts';
export { watchReadable } from './libuv-poll.ts';
