/**
 * DNS messages on the wire, read defensively: the transparent proxy sees
 * whatever a pod sends, so nothing here throws, loops or reads out of bounds.
 *
 *   datagram / TCP frame ─► parseQuery ─► DnsQuery | QueryProblem (reason, how to answer)
 *   upstream answer      ─► parseAnswer(query) ─► rcode, IPs through the CNAME chain, TTL
 *   buildReply(query, rcode)  REFUSED / SERVFAIL with the question echoed byte for byte
 *   buildHeaderReply(msg, rcode)  FORMERR / NOTIMP when only the header could be read
 *
 * Why not dns-packet's decode on the hot path: it throws on bad input (fine:
 * we could catch), it already refuses forward compression pointers (so it
 * cannot loop) and names over 254 bytes, but it decodes every record into
 * objects and has no message-size or record-count limits of its own. This
 * reader walks the bytes once with explicit limits, allocates only the name
 * string and the IP strings it returns, and is cross-checked against
 * dns-packet in dns-wire.test.ts.
 *
 * Limits (each breach has its own reason, counted by the proxy):
 * - UDP: 512 bytes without EDNS (RFC 1035 §4.2.1), up to 4096 with an OPT
 *   record (RFC 6891 §6.2.5); TCP: 65535, the two-byte length prefix's limit.
 * - Exactly one question (RFC 9619: "a DNS message with QDCOUNT > 1 … FORMERR").
 * - Names: labels ≤ 63 bytes, whole name ≤ 255 bytes (RFC 1035 §2.3.4);
 *   compression pointers must point strictly backwards (as dns-packet and
 *   RFC 1035 §4.1.4 "a prior occurrence"), which bounds the jumps and makes
 *   loops impossible; at most MAX_POINTER_JUMPS anyway.
 * - At most MAX_RECORDS resource records in an answer.
 *
 * Names are returned lower-case, fully qualified (trailing dot), in
 * presentation form: a byte that is not `[-a-z0-9_]` inside a label is
 * escaped (`\.`, `\DDD`), so a label containing a dot can never pass for two
 * labels when matched against a policy pattern.
 */

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const QTYPE = { A: 1, CNAME: 5, AAAA: 28, OPT: 41 } as const;

export const DNS_LIMITS = {
  udpWithoutEdns: 512,
  udpWithEdns: 4096,
  tcp: 65535,
  maxQuestions: 1,
  maxRecords: 512,
  maxPointerJumps: 32,
  maxNameBytes: 255,
} as const;

const HEADER_BYTES = 12;
const FLAG_QR = 0x8000;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_CD = 0x0010;
const OPCODE_QUERY = 0;

export type Transport = 'udp' | 'tcp';

/** Why a message was not accepted; the proxy counts each separately. */
export type MalformedReason =
  | 'short-header'
  | 'not-a-query'
  | 'bad-opcode'
  | 'question-count'
  | 'bad-name'
  | 'compression-loop'
  | 'truncated'
  | 'oversized'
  | 'too-many-records';

export const MALFORMED_REASONS: readonly MalformedReason[] = [
  'short-header',
  'not-a-query',
  'bad-opcode',
  'question-count',
  'bad-name',
  'compression-loop',
  'truncated',
  'oversized',
  'too-many-records',
];

export interface DnsQuery {
  readonly id: number;
  /** The request's flags word (RD and CD are echoed in replies). */
  readonly flags: number;
  /** Lower-case, fully qualified, presentation form: `www.example.com.` */
  readonly name: string;
  readonly qtype: number;
  readonly qclass: number;
  /** Offset just past the question: bytes [12, questionEnd) are the question as sent. */
  readonly questionEnd: number;
  /** The client's EDNS UDP payload size, 0 without an OPT record. */
  readonly ednsUdpSize: number;
}

/** How to answer a message that failed: FORMERR/NOTIMP need a readable header and must not answer a response. */
export type ProblemAnswer = 'formerr' | 'notimp' | 'drop';

export type QueryParse =
  | { readonly ok: true; readonly query: DnsQuery }
  | { readonly ok: false; readonly reason: MalformedReason; readonly answer: ProblemAnswer };

export interface DnsAnswer {
  readonly rcode: number;
  readonly truncated: boolean;
  /** A and AAAA addresses of the question's name and of the names its CNAME chain leads to. */
  readonly ips: string[];
  /** Smallest TTL among the records of the chain (seconds); 0 when there is none. */
  readonly ttl: number;
}

export type AnswerParse =
  | { readonly ok: true; readonly answer: DnsAnswer }
  | { readonly ok: false; readonly reason: MalformedReason | 'id-mismatch' | 'question-mismatch' };

/** A failure inside the name reader, as a code (no exceptions on the hot path). */
const NAME_TRUNCATED = -1;
const NAME_BAD = -2;
const NAME_LOOP = -3;

/** Where the last readName() stopped in the message (past the name as it appears in place). */
let nameEnd = 0;
/** The last readName()'s text. */
let nameText = '';
/**
 * readName() writes a name's presentation form here and makes one string of
 * it at the end: appending a character at a time allocated a string per
 * character, several times per query. A name is at most 255 bytes, each
 * escaped to at most 4 characters.
 */
const nameScratch = Buffer.allocUnsafe(4 * DNS_LIMITS.maxNameBytes + 64);
const BACKSLASH = 0x5c;

/**
 * Reads the (possibly compressed) name at `off`. Returns 0 on success
 * (results in nameEnd/nameText), else one of the NAME_* codes. With
 * `wantText` false the name is only validated and skipped.
 */
function readName(msg: Uint8Array, off: number, wantText: boolean): number {
  let pos = off;
  let end = -1;
  let total = 0;
  let jumps = 0;
  let w = 0;
  /** Pointers must go strictly below the start of the current run of labels. */
  let floor = off;
  for (;;) {
    if (pos >= msg.length) return NAME_TRUNCATED;
    const len = msg[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= msg.length) return NAME_TRUNCATED;
      const target = ((len & 0x3f) << 8) | msg[pos + 1]!;
      if (end < 0) end = pos + 2;
      if (target >= floor || ++jumps > DNS_LIMITS.maxPointerJumps) return NAME_LOOP;
      pos = target;
      floor = target;
      continue;
    }
    if (kind !== 0) return NAME_BAD; // 0x40 / 0x80: extended label types, obsolete (RFC 6891 §5)
    total += len + 1;
    if (total + 1 > DNS_LIMITS.maxNameBytes) return NAME_BAD;
    if (pos + 1 + len > msg.length) return NAME_TRUNCATED;
    if (wantText) {
      const b = nameScratch;
      for (let i = pos + 1; i <= pos + len; i++) {
        let c = msg[i]!;
        if (c >= 0x41 && c <= 0x5a) c += 0x20; // A-Z → a-z
        if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) {
          b[w++] = c;
        } else if (c === 0x2e || c === BACKSLASH) {
          b[w++] = BACKSLASH;
          b[w++] = c;
        } else {
          // \DDD, three decimal digits
          b[w++] = BACKSLASH;
          b[w++] = 0x30 + ((c / 100) | 0);
          b[w++] = 0x30 + (((c / 10) | 0) % 10);
          b[w++] = 0x30 + (c % 10);
        }
      }
      b[w++] = 0x2e;
    }
    pos += 1 + len;
  }
  nameEnd = end;
  nameText = wantText ? (w === 0 ? '.' : nameScratch.toString('latin1', 0, w)) : '';
  return 0;
}

function nameProblem(code: number): MalformedReason {
  return code === NAME_TRUNCATED ? 'truncated' : code === NAME_LOOP ? 'compression-loop' : 'bad-name';
}

/** Skips `count` resource records from `off`; returns the offset past them or a negative NAME_* code. */
function skipRecords(msg: Uint8Array, off: number, count: number, onOpt?: (udpSize: number) => void): number {
  let pos = off;
  for (let i = 0; i < count; i++) {
    const r = readName(msg, pos, false);
    if (r !== 0) return r;
    pos = nameEnd;
    if (pos + 10 > msg.length) return NAME_TRUNCATED;
    const type = (msg[pos]! << 8) | msg[pos + 1]!;
    const rdlen = (msg[pos + 8]! << 8) | msg[pos + 9]!;
    if (type === QTYPE.OPT && onOpt) onOpt((msg[pos + 2]! << 8) | msg[pos + 3]!);
    pos += 10 + rdlen;
    if (pos > msg.length) return NAME_TRUNCATED;
  }
  return pos;
}

let optUdpSize = 0;
const noteOpt = (size: number): void => {
  // RFC 6891 §6.2.5: "Values lower than 512 MUST be treated as equal to 512."
  optUdpSize = size < 512 ? 512 : size;
};

/**
 * Parses a query as a DNS server must before acting on it. Steps:
 * 1. a 12-byte header, else drop (nothing to answer with);
 * 2. QR must be 0 — never answer a response (no reflection loops), drop;
 * 3. OPCODE must be QUERY, else NOTIMP (RFC 1035 §4.1.1 "the name server does
 *    not support the requested kind of query");
 * 4. size limits per transport; QDCOUNT = 1; a well-formed question;
 * 5. the remaining sections must be well-formed (their OPT gives the EDNS size).
 */
export function parseQuery(msg: Uint8Array, transport: Transport): QueryParse {
  if (msg.length < HEADER_BYTES) return { ok: false, reason: 'short-header', answer: 'drop' };
  const flags = (msg[2]! << 8) | msg[3]!;
  if ((flags & FLAG_QR) !== 0) return { ok: false, reason: 'not-a-query', answer: 'drop' };
  if (((flags >> 11) & 0xf) !== OPCODE_QUERY) return { ok: false, reason: 'bad-opcode', answer: 'notimp' };
  const limit = transport === 'udp' ? DNS_LIMITS.udpWithEdns : DNS_LIMITS.tcp;
  if (msg.length > limit) return { ok: false, reason: 'oversized', answer: 'formerr' };
  const qd = (msg[4]! << 8) | msg[5]!;
  if (qd !== DNS_LIMITS.maxQuestions) return { ok: false, reason: 'question-count', answer: 'formerr' };
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  if (an + ns + ar > DNS_LIMITS.maxRecords) return { ok: false, reason: 'too-many-records', answer: 'formerr' };
  const r = readName(msg, HEADER_BYTES, true);
  if (r !== 0) return { ok: false, reason: nameProblem(r), answer: 'formerr' };
  const name = nameText;
  let pos = nameEnd;
  if (pos + 4 > msg.length) return { ok: false, reason: 'truncated', answer: 'formerr' };
  const qtype = (msg[pos]! << 8) | msg[pos + 1]!;
  const qclass = (msg[pos + 2]! << 8) | msg[pos + 3]!;
  pos += 4;
  const questionEnd = pos;
  optUdpSize = 0;
  const after = skipRecords(msg, pos, an + ns + ar, noteOpt);
  if (after < 0) return { ok: false, reason: nameProblem(after), answer: 'formerr' };
  const ednsUdpSize = optUdpSize;
  if (transport === 'udp' && ednsUdpSize === 0 && msg.length > DNS_LIMITS.udpWithoutEdns) {
    return { ok: false, reason: 'oversized', answer: 'formerr' };
  }
  return { ok: true, query: { id: (msg[0]! << 8) | msg[1]!, flags, name, qtype, qclass, questionEnd, ednsUdpSize } };
}

/** Largest answer a client can take over `transport`: its EDNS size (capped at 4096) or 512. */
export function maxAnswerBytes(q: DnsQuery, transport: Transport): number {
  if (transport === 'tcp') return DNS_LIMITS.tcp;
  if (q.ednsUdpSize === 0) return DNS_LIMITS.udpWithoutEdns;
  return Math.min(q.ednsUdpSize, DNS_LIMITS.udpWithEdns);
}

/** Whether bytes [12, questionEnd) of two messages hold the same question (names compared case-insensitively). */
function sameQuestion(query: Uint8Array, q: DnsQuery, answer: Uint8Array): boolean {
  const end = q.questionEnd;
  if (answer.length < end) return false;
  // Fast path: the server echoed the bytes as sent (the common case, compression-free).
  let same = true;
  for (let i = HEADER_BYTES; i < end; i++) {
    if (query[i] !== answer[i]) {
      same = false;
      break;
    }
  }
  if (same) return true;
  const r = readName(answer, HEADER_BYTES, true);
  if (r !== 0 || nameText !== q.name || nameEnd + 4 > answer.length) return false;
  return ((answer[nameEnd]! << 8) | answer[nameEnd + 1]!) === q.qtype && ((answer[nameEnd + 2]! << 8) | answer[nameEnd + 3]!) === q.qclass;
}

interface ChainRecord {
  owner: string;
  type: number;
  ttl: number;
  /** CNAME target or IP text. */
  value: string;
}

/**
 * Reads an upstream answer to `q` (sent as `query`): same ID, same question,
 * then the A/AAAA records reachable from the question's name through CNAMEs
 * (in any order, as RFC 1034 §3.6.2 does not promise one). The TTL is the
 * smallest along the chain, as Cilium's ExtractMsgDetails takes it.
 */
export function parseAnswer(answerMsg: Uint8Array, query: Uint8Array, q: DnsQuery): AnswerParse {
  const msg = answerMsg;
  if (msg.length < HEADER_BYTES) return { ok: false, reason: 'short-header' };
  if (((msg[0]! << 8) | msg[1]!) !== q.id) return { ok: false, reason: 'id-mismatch' };
  const flags = (msg[2]! << 8) | msg[3]!;
  if ((flags & FLAG_QR) === 0) return { ok: false, reason: 'not-a-query' };
  const rcode = flags & 0xf;
  const truncated = (flags & FLAG_TC) !== 0;
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  if (qd !== 1) {
    // A header-only answer (e.g. FORMERR/NOTIMP from upstream) carries no question.
    if (qd === 0 && an === 0) return { ok: true, answer: { rcode, truncated, ips: [], ttl: 0 } };
    return { ok: false, reason: 'question-count' };
  }
  if (!sameQuestion(query, q, msg)) return { ok: false, reason: 'question-mismatch' };
  if (an > DNS_LIMITS.maxRecords) return { ok: false, reason: 'too-many-records' };
  let pos = q.questionEnd;
  const records: ChainRecord[] = [];
  for (let i = 0; i < an; i++) {
    let owner: string;
    if (pos + 1 < msg.length && msg[pos] === 0xc0 && msg[pos + 1] === HEADER_BYTES) {
      // The usual owner: a pointer to the question's name, which sameQuestion() found equal to q.name.
      owner = q.name;
      pos += 2;
    } else {
      const r = readName(msg, pos, true);
      if (r !== 0) return { ok: false, reason: nameProblem(r) };
      owner = nameText;
      pos = nameEnd;
    }
    if (pos + 10 > msg.length) return { ok: false, reason: 'truncated' };
    const type = (msg[pos]! << 8) | msg[pos + 1]!;
    const klass = (msg[pos + 2]! << 8) | msg[pos + 3]!;
    const ttl = ((msg[pos + 4]! << 24) | (msg[pos + 5]! << 16) | (msg[pos + 6]! << 8) | msg[pos + 7]!) >>> 0;
    const rdlen = (msg[pos + 8]! << 8) | msg[pos + 9]!;
    const rd = pos + 10;
    pos = rd + rdlen;
    if (pos > msg.length) return { ok: false, reason: 'truncated' };
    if (klass !== 1) continue; // IN only
    // RFC 2181 §8: a TTL with the top bit set is treated as zero.
    const t = ttl > 0x7fffffff ? 0 : ttl;
    if (type === QTYPE.A && rdlen === 4) {
      records.push({ owner, type, ttl: t, value: `${msg[rd]}.${msg[rd + 1]}.${msg[rd + 2]}.${msg[rd + 3]}` });
    } else if (type === QTYPE.AAAA && rdlen === 16) {
      records.push({ owner, type, ttl: t, value: ipv6Text(msg, rd) });
    } else if (type === QTYPE.CNAME) {
      const c = readName(msg, rd, true);
      if (c !== 0 || nameEnd > pos) return { ok: false, reason: c !== 0 ? nameProblem(c) : 'bad-name' };
      records.push({ owner, type, ttl: t, value: nameText });
    }
  }
  // The rest must at least be well-formed; its content is not ours to judge.
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  if (an + ns + ar > DNS_LIMITS.maxRecords) return { ok: false, reason: 'too-many-records' };
  const after = skipRecords(msg, pos, ns + ar);
  if (after < 0) return { ok: false, reason: nameProblem(after) };
  const ips: string[] = [];
  const ttl = chainOf(q.name, records, ips);
  return { ok: true, answer: { rcode, truncated, ips, ttl } };
}

/** Fills `ips` with the chain's addresses; returns its smallest TTL (0 without addresses). */
function chainOf(qname: string, records: readonly ChainRecord[], ips: string[]): number {
  let cnames = false;
  for (let i = 0; i < records.length && !cnames; i++) cnames = records[i]!.type === QTYPE.CNAME;
  if (!cnames) {
    // No CNAME (the common answer): the chain is the question's name alone.
    let ttl = Infinity;
    for (const r of records) {
      if (r.owner !== qname) continue;
      if (!ips.includes(r.value)) ips.push(r.value);
      ttl = Math.min(ttl, r.ttl);
    }
    return ips.length === 0 ? 0 : ttl;
  }
  const names = new Set<string>([qname]);
  const used = new Uint8Array(records.length);
  let ttl = Infinity;
  // Fixpoint over CNAMEs: each pass can only add names, so at most records.length passes.
  for (let grew = true; grew; ) {
    grew = false;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (used[i] || r.type !== QTYPE.CNAME || !names.has(r.owner)) continue;
      used[i] = 1;
      ttl = Math.min(ttl, r.ttl);
      if (!names.has(r.value)) {
        names.add(r.value);
        grew = true;
      }
    }
  }
  for (const r of records) {
    if (r.type === QTYPE.CNAME || !names.has(r.owner)) continue;
    if (!ips.includes(r.value)) ips.push(r.value);
    ttl = Math.min(ttl, r.ttl);
  }
  return ips.length === 0 || ttl === Infinity ? 0 : ttl;
}

function ipv6Text(b: Uint8Array, off: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero words, the first one on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * A reply to a parsed query that carries only its question (REFUSED,
 * SERVFAIL, or TC=1 to send the client to TCP): same ID, QR=1, the
 * client's RD and CD, RA as a recursive server sets it, the question
 * echoed byte for byte (RFC 1035 §4.1.1; Cilium answers denied names this way).
 */
export function buildReply(query: Uint8Array, q: DnsQuery, rcode: number, truncated = false): Buffer {
  const out = Buffer.allocUnsafe(q.questionEnd);
  out.set(query.subarray(0, q.questionEnd), 0);
  const flags = FLAG_QR | (q.flags & (FLAG_RD | FLAG_CD)) | FLAG_RA | (truncated ? FLAG_TC : 0) | (rcode & 0xf);
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = 1;
  out.fill(0, 6, 12);
  return out;
}

/**
 * A header-only reply (FORMERR, NOTIMP) for a message whose question could
 * not be read: same ID and OPCODE, QR=1, RD copied, no sections. `null` when
 * even the header is missing or the message is itself a response.
 */
export function buildHeaderReply(msg: Uint8Array, rcode: number): Buffer | null {
  if (msg.length < HEADER_BYTES) return null;
  const flags = (msg[2]! << 8) | msg[3]!;
  if ((flags & FLAG_QR) !== 0) return null;
  const out = Buffer.alloc(HEADER_BYTES);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  const f = FLAG_QR | (flags & (0x7800 | FLAG_RD)) | FLAG_RA | (rcode & 0xf);
  out[2] = f >> 8;
  out[3] = f & 0xff;
  return out;
}

/** Answers a problem as `parseQuery` said to, or null to drop. */
export function problemReply(msg: Uint8Array, answer: ProblemAnswer): Buffer | null {
  if (answer === 'drop') return null;
  return buildHeaderReply(msg, answer === 'notimp' ? RCODE.NOTIMP : RCODE.FORMERR);
}

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV',
  35: 'NAPTR', 39: 'DNAME', 43: 'DS', 46: 'RRSIG', 48: 'DNSKEY', 52: 'TLSA', 64: 'SVCB', 65: 'HTTPS',
  255: 'ANY', 257: 'CAA',
};
const qtypeLists = new Map<number, readonly string[]>();

/** `['A']` for 1, `['TYPE65280']` for unknown types (RFC 3597 §5): one shared frozen array per type. */
export function qtypeNames(qtype: number): readonly string[] {
  let l = qtypeLists.get(qtype);
  if (!l) {
    l = Object.freeze([TYPE_NAMES[qtype] ?? `TYPE${qtype}`]);
    if (qtypeLists.size < 1024) qtypeLists.set(qtype, l);
  }
  return l;
}
