/**
 * The libbpf calls the eBPF datapath makes, through koffi (`libbpf.so.1`).
 *
 *   object:  open_file ─► set_pin_path (every map) ─► load ─► program fds
 *   maps:    update / lookup / delete / get_next_key on a map fd
 *   tc:      hook_create (clsact) ─► attach (fixed handle+priority, REPLACE) / query / detach
 *   tcx:     prog_query_opts ─► prog_attach_opts (append, or REPLACE one) / prog_detach2
 *            (kernel 6.6+; libbpf 1.1's calls carry the ifindex where the
 *            kernel reads target_ifindex, the same field of bpf_attr)
 *   events:  ring_buffer__new(fd, registered callback) ─► epoll fd ─► libuv poll ─► consume
 *
 * libbpf 1.x reports errors as negative errno (and NULL + errno for
 * pointers); every wrapper here throws a `LibbpfError` naming the call.
 * Pointers are koffi BigInts; none of them leaves this file's callers
 * without an owner that frees it (`bpf_object__close`, `ring_buffer__free`).
 * All calls are synchronous and short (a map update is about half a
 * microsecond), so they run on the event loop; the ring buffer is read when
 * libuv reports its epoll fd readable, never by a blocking poll.
 */
import koffi from 'koffi';
import { ERRNO, errnoName } from '../../kernel/index.ts';

export class LibbpfError extends Error {
  readonly errno: number;
  constructor(call: string, errno: number, detail = '') {
    super(`${call}: ${errnoText(errno)}${detail ? ` (${detail})` : ''}`);
    this.errno = errno;
  }
}

export const errnoText = errnoName;

export const ENOENT = ERRNO['ENOENT'] ?? 2;
export const EEXIST = ERRNO['EEXIST'] ?? 17;

export const BPF_ANY = 0;
export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
export const BPF_TC_F_REPLACE = 1;
/** enum bpf_attach_type (kernel 6.6); Debian 12's uapi headers predate them. */
const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;
const BPF_F_REPLACE = 1 << 2;
/** struct bpf_prog_info: `name` (16 bytes) at offset 64. */
const PROG_INFO_NAME_END = 80;

export type Ptr = bigint;

const TcHook = koffi.struct('pl_bpf_tc_hook', { sz: 'size_t', ifindex: 'int', attach_point: 'int', parent: 'uint32_t' });
const TcOpts = koffi.struct('pl_bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});
const AttachOpts = koffi.struct('pl_bpf_prog_attach_opts', { sz: 'size_t', flags: 'uint32_t', replace_prog_fd: 'int' });
const QueryOpts = koffi.struct('pl_bpf_prog_query_opts', {
  sz: 'size_t',
  query_flags: 'uint32_t',
  attach_flags: 'uint32_t',
  prog_ids: 'uint32_t *',
  prog_cnt: 'uint32_t',
  prog_attach_flags: 'uint32_t *',
});
const SampleCb = koffi.proto('int pl_ringbuf_sample_fn(void *ctx, void *data, size_t size)');

interface TcOptsValue {
  sz: number;
  prog_fd: number;
  flags: number;
  prog_id: number;
  handle: number;
  priority: number;
}

/** What the datapath needs of libbpf: narrow, so a fake costs nothing. */
export interface Libbpf {
  openObject(path: string): Ptr;
  loadObject(obj: Ptr): void;
  closeObject(obj: Ptr): void;
  /** Maps of an object, internal ones (`.rodata`…) left out. */
  maps(obj: Ptr): { name: string; ptr: Ptr }[];
  setPinPath(map: Ptr, path: string): void;
  mapFd(map: Ptr): number;
  mapMaxEntries(map: Ptr): number;
  mapKeySize(map: Ptr): number;
  mapValueSize(map: Ptr): number;
  programFd(obj: Ptr, name: string): number;
  pinProgram(obj: Ptr, name: string, path: string): void;
  /** The kernel's id of a program or map behind an fd. */
  objectId(fd: number): number;
  update(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  /** false when the key is absent. */
  lookup(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  /** false when the key was absent. */
  delete(fd: number, key: Uint8Array): boolean;
  /** false at the end of the map. `key` null: the first key. */
  nextKey(fd: number, key: Uint8Array | null, next: Uint8Array): boolean;
  possibleCpus(): number;
  /** Creates the clsact qdisc on a device (already there: fine). */
  tcHookCreate(ifindex: number): void;
  /** Attaches (or replaces) the filter `handle`/`priority`; returns the attached program id. */
  tcAttach(ifindex: number, point: number, progFd: number, handle: number, priority: number): number;
  /** The program id attached at handle/priority, or 0. */
  tcQuery(ifindex: number, point: number, handle: number, priority: number): number;
  tcDetach(ifindex: number, point: number, handle: number, priority: number): void;
  /** Whether the kernel has tcx hooks (6.6+). */
  hasTcx(): boolean;
  /** Ids of the programs on a device's tcx hook (`point`: BPF_TC_INGRESS or BPF_TC_EGRESS), in run order. */
  tcxQuery(ifindex: number, point: number): number[];
  /** Appends the program to the hook or, given `replaceId`, puts it in that program's place. */
  tcxAttach(ifindex: number, point: number, progFd: number, replaceId?: number): void;
  /** Takes a program off the hook (gone already: fine). */
  tcxDetach(ifindex: number, point: number, progId: number): void;
  /** A loaded program's name ('' once it is gone). */
  programName(id: number): string;
  /** An fd of the object pinned at `path` (close it with closeFd). */
  pinnedFd(path: string): number;
  closeFd(fd: number): void;
  ifNameToIndex(name: string): number;
  ringBuffer(mapFd: number, onSample: (data: DataView) => void): { epollFd: number; consume(): number; free(): void };
}

let bound: Libbpf | undefined;

export function libbpf(): Libbpf {
  if (bound) return bound;
  const lib = koffi.load('libbpf.so.1');
  const libc = koffi.load('libc.so.6');
  const f = {
    open: lib.func('void *bpf_object__open_file(const char *path, const void *opts)'),
    load: lib.func('int bpf_object__load(void *obj)'),
    close: lib.func('void bpf_object__close(void *obj)'),
    nextMap: lib.func('void *bpf_object__next_map(const void *obj, const void *map)'),
    mapName: lib.func('const char *bpf_map__name(const void *map)'),
    setPin: lib.func('int bpf_map__set_pin_path(void *map, const char *path)'),
    mapFd: lib.func('int bpf_map__fd(const void *map)'),
    maxEntries: lib.func('uint32_t bpf_map__max_entries(const void *map)'),
    keySize: lib.func('uint32_t bpf_map__key_size(const void *map)'),
    valueSize: lib.func('uint32_t bpf_map__value_size(const void *map)'),
    findProg: lib.func('void *bpf_object__find_program_by_name(const void *obj, const char *name)'),
    progFd: lib.func('int bpf_program__fd(const void *prog)'),
    progPin: lib.func('int bpf_program__pin(void *prog, const char *path)'),
    infoByFd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)'),
    update: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    lookup: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    del: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
    next: lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    cpus: lib.func('int libbpf_num_possible_cpus(void)'),
    hookCreate: lib.func('int bpf_tc_hook_create(pl_bpf_tc_hook *hook)'),
    attach: lib.func('int bpf_tc_attach(const pl_bpf_tc_hook *hook, _Inout_ pl_bpf_tc_opts *opts)'),
    query: lib.func('int bpf_tc_query(const pl_bpf_tc_hook *hook, _Inout_ pl_bpf_tc_opts *opts)'),
    detach: lib.func('int bpf_tc_detach(const pl_bpf_tc_hook *hook, const pl_bpf_tc_opts *opts)'),
    rbNew: lib.func('void *ring_buffer__new(int map_fd, pl_ringbuf_sample_fn *sample_cb, void *ctx, const void *opts)'),
    rbConsume: lib.func('int ring_buffer__consume(void *rb)'),
    rbEpollFd: lib.func('int ring_buffer__epoll_fd(const void *rb)'),
    rbFree: lib.func('void ring_buffer__free(void *rb)'),
    progFdById: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    progAttach: lib.func('int bpf_prog_attach_opts(int prog_fd, int target, int type, const pl_bpf_prog_attach_opts *opts)'),
    progDetach: lib.func('int bpf_prog_detach2(int prog_fd, int target, int type)'),
    progQuery: lib.func('int bpf_prog_query_opts(int target, int type, _Inout_ pl_bpf_prog_query_opts *opts)'),
    nameToIndex: libc.func('unsigned int if_nametoindex(const char *name)'),
    closeFd: libc.func('int close(int fd)'),
    objGet: lib.func('int bpf_obj_get(const char *path)'),
  };
  const check = (call: string, rc: number, detail = ''): number => {
    if (rc < 0) throw new LibbpfError(call, -rc, detail);
    return rc;
  };
  const hook = (ifindex: number, point: number) => ({ sz: TcHook.size, ifindex, attach_point: point, parent: 0 });
  const opts = (o: Partial<TcOptsValue>): TcOptsValue => ({ sz: TcOpts.size, prog_fd: 0, flags: 0, prog_id: 0, handle: 0, priority: 0, ...o });
  const cpus = check('libbpf_num_possible_cpus', f.cpus() as number);
  const tcxType = (point: number): number => (point === BPF_TC_EGRESS ? BPF_TCX_EGRESS : BPF_TCX_INGRESS);
  const ENODEV = ERRNO['ENODEV'] ?? 19;
  const EINVAL = ERRNO['EINVAL'] ?? 22;
  /** Runs `use` on an fd of program `id`; undefined when the program is gone. */
  const withProgFd = <T>(id: number, use: (fd: number) => T): T | undefined => {
    const fd = f.progFdById(id) as number;
    if (fd === -ENOENT) return undefined;
    check('bpf_prog_get_fd_by_id', fd, `id ${id}`);
    try {
      return use(fd);
    } finally {
      f.closeFd(fd);
    }
  };
  /** rc of a tcx query; ids filled in up to `ids.length`. */
  const tcxQueryRaw = (ifindex: number, point: number, ids: Uint32Array): { rc: number; count: number } => {
    const o = { sz: QueryOpts.size, query_flags: 0, attach_flags: 0, prog_ids: ids, prog_cnt: ids.length, prog_attach_flags: null };
    const rc = f.progQuery(ifindex, tcxType(point), o) as number;
    return { rc, count: o.prog_cnt };
  };
  let tcx: boolean | undefined;

  bound = {
    openObject(path) {
      const obj = f.open(path, null) as Ptr | null;
      if (!obj) throw new LibbpfError('bpf_object__open_file', koffi.errno(), path);
      return obj;
    },
    loadObject: (obj) => void check('bpf_object__load', f.load(obj) as number),
    closeObject: (obj) => void f.close(obj),
    maps(obj) {
      const out: { name: string; ptr: Ptr }[] = [];
      for (let m = f.nextMap(obj, null) as Ptr | null; m; m = f.nextMap(obj, m) as Ptr | null) {
        const name = f.mapName(m) as string;
        if (!name.startsWith('.')) out.push({ name, ptr: m });
      }
      return out;
    },
    setPinPath: (map, path) => void check('bpf_map__set_pin_path', f.setPin(map, path) as number, path),
    mapFd: (map) => check('bpf_map__fd', f.mapFd(map) as number),
    mapMaxEntries: (map) => f.maxEntries(map) as number,
    mapKeySize: (map) => f.keySize(map) as number,
    mapValueSize: (map) => f.valueSize(map) as number,
    programFd(obj, name) {
      const p = f.findProg(obj, name) as Ptr | null;
      if (!p) throw new LibbpfError('bpf_object__find_program_by_name', ENOENT, name);
      return check('bpf_program__fd', f.progFd(p) as number, name);
    },
    pinProgram(obj, name, path) {
      const p = f.findProg(obj, name) as Ptr | null;
      if (!p) throw new LibbpfError('bpf_object__find_program_by_name', ENOENT, name);
      check('bpf_program__pin', f.progPin(p, path) as number, path);
    },
    objectId(fd) {
      // struct bpf_prog_info / bpf_map_info both open with { __u32 type; __u32 id; }.
      const info = new Uint8Array(8);
      const len = [8];
      check('bpf_obj_get_info_by_fd', f.infoByFd(fd, info, len) as number);
      return new DataView(info.buffer).getUint32(4, true);
    },
    update: (fd, key, value, flags = BPF_ANY) => void check('bpf_map_update_elem', f.update(fd, key, value, flags) as number),
    lookup(fd, key, value) {
      const rc = f.lookup(fd, key, value) as number;
      if (rc === -ENOENT) return false;
      check('bpf_map_lookup_elem', rc);
      return true;
    },
    delete(fd, key) {
      const rc = f.del(fd, key) as number;
      if (rc === -ENOENT) return false;
      check('bpf_map_delete_elem', rc);
      return true;
    },
    nextKey(fd, key, next) {
      const rc = f.next(fd, key, next) as number;
      if (rc === -ENOENT) return false;
      check('bpf_map_get_next_key', rc);
      return true;
    },
    possibleCpus: () => cpus,
    tcHookCreate(ifindex) {
      const rc = f.hookCreate(hook(ifindex, BPF_TC_INGRESS)) as number;
      if (rc < 0 && rc !== -EEXIST) check('bpf_tc_hook_create', rc, `ifindex ${ifindex}`);
    },
    tcAttach(ifindex, point, progFd, handle, priority) {
      const o = opts({ prog_fd: progFd, flags: BPF_TC_F_REPLACE, handle, priority });
      check('bpf_tc_attach', f.attach(hook(ifindex, point), o) as number, `ifindex ${ifindex}`);
      return o.prog_id;
    },
    tcQuery(ifindex, point, handle, priority) {
      const o = opts({ handle, priority });
      const rc = f.query(hook(ifindex, point), o) as number;
      if (rc === -ENOENT || rc === -(ERRNO['EINVAL'] ?? 22) || rc === -(ERRNO['ENODEV'] ?? 19)) return 0;
      check('bpf_tc_query', rc, `ifindex ${ifindex}`);
      return o.prog_id;
    },
    tcDetach(ifindex, point, handle, priority) {
      const rc = f.detach(hook(ifindex, point), opts({ handle, priority })) as number;
      if (rc < 0 && rc !== -ENOENT && rc !== -(ERRNO['ENODEV'] ?? 19) && rc !== -(ERRNO['EINVAL'] ?? 22)) {
        check('bpf_tc_detach', rc, `ifindex ${ifindex}`);
      }
    },
    hasTcx() {
      // A kernel without tcx rejects the attach type; the loopback (ifindex 1) is in every namespace.
      tcx ??= tcxQueryRaw(1, BPF_TC_INGRESS, new Uint32Array(1)).rc !== -EINVAL;
      return tcx;
    },
    tcxQuery(ifindex, point) {
      for (let room = 8; ; room *= 4) {
        const ids = new Uint32Array(room);
        const { rc, count } = tcxQueryRaw(ifindex, point, ids);
        if (rc === -ENODEV) return [];
        if (rc === -(ERRNO['ENOSPC'] ?? 28)) continue;
        check('bpf_prog_query_opts', rc, `tcx ifindex ${ifindex}`);
        return [...ids.subarray(0, count)];
      }
    },
    tcxAttach(ifindex, point, progFd, replaceId) {
      const attach = (replaceFd: number): number =>
        f.progAttach(progFd, ifindex, tcxType(point), { sz: AttachOpts.size, flags: replaceFd ? BPF_F_REPLACE : 0, replace_prog_fd: replaceFd }) as number;
      const rc = replaceId ? (withProgFd(replaceId, attach) ?? attach(0)) : attach(0);
      check('bpf_prog_attach_opts', rc, `tcx ifindex ${ifindex}`);
    },
    tcxDetach(ifindex, point, progId) {
      const rc = withProgFd(progId, (fd) => f.progDetach(fd, ifindex, tcxType(point)) as number) ?? 0;
      if (rc < 0 && rc !== -ENOENT && rc !== -ENODEV) check('bpf_prog_detach2', rc, `tcx ifindex ${ifindex}`);
    },
    programName(id) {
      const info = new Uint8Array(PROG_INFO_NAME_END);
      const rc = withProgFd(id, (fd) => f.infoByFd(fd, info, [info.length]) as number);
      if (rc === undefined) return '';
      check('bpf_obj_get_info_by_fd', rc, `program ${id}`);
      const name = info.subarray(PROG_INFO_NAME_END - 16);
      return Buffer.from(name.subarray(0, name.indexOf(0) < 0 ? 16 : name.indexOf(0))).toString();
    },
    pinnedFd: (path) => check('bpf_obj_get', f.objGet(path) as number, path),
    closeFd: (fd) => void f.closeFd(fd),
    ifNameToIndex: (name) => f.nameToIndex(name) as number,
    ringBuffer(mapFd, onSample) {
      // Registered (not transient): libbpf keeps the pointer for the ring buffer's life.
      // Called only from inside ring_buffer__consume, on this thread.
      const cb = koffi.register((_ctx: Ptr, data: Ptr, size: number | bigint) => {
        onSample(new DataView(koffi.view(data, Number(size))));
        return 0;
      }, koffi.pointer(SampleCb));
      const rb = f.rbNew(mapFd, cb, null, null) as Ptr | null;
      if (!rb) {
        koffi.unregister(cb);
        throw new LibbpfError('ring_buffer__new', koffi.errno());
      }
      return {
        epollFd: check('ring_buffer__epoll_fd', f.rbEpollFd(rb) as number),
        consume: () => check('ring_buffer__consume', f.rbConsume(rb) as number),
        free() {
          f.rbFree(rb);
          koffi.unregister(cb);
        },
      };
    },
  };
  return bound;
}
