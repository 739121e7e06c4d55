/**
 * Privileged: the NFLOG reader against the real kernel, in a network
 * namespace of its own (`pl-nf<random>-a`, deleted in `after`). Needs root and
 * fails, never skips, without it.
 *
 *   ns pl-nf…-a: lo up, 10.250.0.1/32
 *     table inet palisade_nflog_test, chain output:
 *       tcp dport 9  → log group 7 prefix "palisade-test"  drop
 *       udp dport 10 → log group 7 prefix "palisade-bench" accept   (closed port)
 *   child `node nflog-test-child.ts read 7` inside the ns prints what it reads.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

const execFileP = promisify(execFile);
const CHILD = fileURLToPath(new URL('../../../test/kit/nflog-child.ts', import.meta.url));
const NS = `pl-nf${randomBytes(3).toString('hex')}-a`;
const ADDR = '10.250.0.1';
const GROUP = 7;
const RULES = `
table inet palisade_nflog_test {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr ${ADDR} tcp dport 9 log group ${GROUP} prefix "palisade-test" drop
    ip daddr ${ADDR} udp dport 10 log group ${GROUP} prefix "palisade-bench" accept
  }
}
`;

const children = new Set<ChildProcess>();

async function inNs(args: string[], input?: string, timeoutMs = 30_000): Promise<string> {
  const p = execFileP('ip', ['netns', 'exec', NS, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
  if (input !== undefined) {
    p.child.stdin?.end(input);
  }
  return (await p).stdout;
}

/** A child node process inside the namespace whose stdout is JSON lines. */
class NsChild {
  readonly proc: ChildProcess;
  readonly lines: Array<Record<string, unknown>> = [];
  #waiters: Array<() => void> = [];
  #buffered = '';
  stderr = '';

  constructor(args: string[]) {
    this.proc = spawn('ip', ['netns', 'exec', NS, process.execPath, CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.proc);
    this.proc.on('exit', () => {
      children.delete(this.proc);
      this.#wake();
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.#buffered += d.toString();
      let nl: number;
      while ((nl = this.#buffered.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(this.#buffered.slice(0, nl)) as Record<string, unknown>);
        this.#buffered = this.#buffered.slice(nl + 1);
      }
      this.#wake();
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async waitFor(pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      const fatal = this.lines.find((l) => 'fatal' in l);
      if (fatal) throw new Error(`child failed: ${JSON.stringify(fatal)}`);
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`child exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${what}; stderr: ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; lines: ${JSON.stringify(this.lines.slice(-3))}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.pid !== undefined && this.proc.exitCode === null) process.kill(this.proc.pid, sig);
  }

  /** SIGTERM, then the child's summary line. */
  async stop(): Promise<Record<string, unknown>> {
    this.signal('SIGTERM');
    const s = await this.waitFor((l) => 'summary' in l, 'summary');
    return s['summary'] as Record<string, unknown>;
  }
}

async function flood(port: number, count: number): Promise<{ sent: number; ms: number }> {
  return JSON.parse(await inNs([process.execPath, CHILD, 'flood', ADDR, String(port), String(count)])) as { sent: number; ms: number };
}

async function tcpSynToPort9(): Promise<void> {
  // The SYN is dropped by the rule: connect() fails at once (EPERM); `timeout` bounds it anyway.
  await inNs(['timeout', '1', 'bash', '-c', `exec 3<>/dev/tcp/${ADDR}/9`]).catch(() => {});
}

const rate = (n: number, ms: number): string => `${Math.round(n / (ms / 1000)).toLocaleString('en')}/s`;

describe('nflog reader, privileged (own network namespace)', () => {
  before(async () => {
    assert.equal(process.getuid?.(), 0, 'privileged test: must run as root (it is not skipped)');
    await execFileP('ip', ['netns', 'add', NS]);
    await execFileP('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    await execFileP('ip', ['-n', NS, 'addr', 'add', `${ADDR}/32`, 'dev', 'lo']);
    await inNs(['nft', '-f', '-'], RULES);
  });

  after(async () => {
    for (const c of children) if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
    await execFileP('ip', ['netns', 'del', NS]).catch(() => {});
  });

  test('a dropped TCP SYN arrives with its prefix and headers', async () => {
    const child = new NsChild(['read', String(GROUP)]);
    await child.waitFor((l) => l['ready'] === true, 'reader ready');
    await tcpSynToPort9();
    const line = await child.waitFor(
      (l) => (l['packet'] as { prefix?: string } | undefined)?.prefix === 'palisade-test',
      'the logged SYN',
    );
    const p = line['packet'] as Record<string, any>;
    assert.equal(p['group'], GROUP);
    assert.equal(p['family'], 2);
    assert.equal(p['hook'], 3, 'output hook');
    assert.equal(p['ip']['protocol'], 'TCP');
    assert.equal(p['ip']['src'], ADDR);
    assert.equal(p['ip']['dst'], ADDR);
    assert.equal(p['ip']['dstPort'], 9);
    assert.equal(p['ip']['tcpFlags'] & 0x02, 0x02, 'SYN');
    assert.equal(p['ip']['tcpFlags'] & 0x10, 0, 'no ACK');
    const s = await child.stop();
    assert.equal(s['malformed'], 0);
    assert.equal(s['overruns'], 0);
  });

  test('a second reader on the same group is refused (EPERM)', async () => {
    const out = JSON.parse(await inNs([process.execPath, CHILD, 'open-twice', String(GROUP)])) as { error: string | null };
    assert.match(out.error ?? '', /already bound/);
  });

  test('overruns (ENOBUFS) are counted and reading goes on', async (t) => {
    const child = new NsChild(['read', String(GROUP), '--summary', '--buffer-bytes', '16384']);
    await child.waitFor((l) => l['ready'] === true, 'reader ready');
    child.signal('SIGSTOP'); // make sure the tiny buffer overflows
    const { sent } = await flood(10, 5000);
    child.signal('SIGCONT');
    // A later message's sequence number is what reveals the gap. Sent while the
    // reader still drains the full buffer, a SYN's message can be dropped too:
    // send two, the second after the reader has had time to drain.
    await new Promise((r) => setTimeout(r, 500));
    await tcpSynToPort9();
    await new Promise((r) => setTimeout(r, 1000));
    await tcpSynToPort9();
    await new Promise((r) => setTimeout(r, 1000));
    const s = await child.stop();
    t.diagnostic(`16 KiB buffer, ${sent} sent while stopped: ${JSON.stringify(s)}`);
    assert.ok((s['overruns'] as number) >= 1, 'ENOBUFS counted');
    assert.ok((s['lost'] as number) > 0, 'sequence gaps counted');
    assert.equal(s['error'], undefined);
    // Every logged packet is either received or counted lost (the SYNs too).
    assert.equal((s['received'] as number) + (s['lost'] as number), sent + 2);
  });

  test('after an overrun, the probe sent once the reader drains reveals the tail: no loss goes uncounted', async (t) => {
    const child = new NsChild(['read', String(GROUP), '--summary', '--buffer-bytes', '16384', '--probe', `${ADDR}:10`]);
    await child.waitFor((l) => l['ready'] === true, 'reader ready');
    child.signal('SIGSTOP');
    const { sent } = await flood(10, 5000);
    child.signal('SIGCONT');
    await new Promise((r) => setTimeout(r, 1000));
    const s = await child.stop();
    t.diagnostic(`16 KiB buffer, ${sent} sent while stopped: ${JSON.stringify(s)}`);
    assert.ok((s['probes'] as number) >= 1, 'a probe was sent');
    assert.ok((s['lost'] as number) > 0, 'the tail of the burst was counted lost');
    assert.equal(s['lostReported'], s['lost'], 'every gap was reported to onLost');
    // Nothing else was logged after the burst: only the probes' sequence numbers reveal its tail.
    assert.equal((s['received'] as number) + (s['lost'] as number), sent + (s['probes'] as number));
  });

  test('throughput (reported, not asserted)', async (t) => {
    const N = 20_000;
    // 1. Live: the sender and the reader run together.
    let child = new NsChild(['read', String(GROUP), '--summary']);
    await child.waitFor((l) => l['ready'] === true, 'reader ready');
    const live = await flood(10, N);
    await new Promise((r) => setTimeout(r, 500));
    let s = await child.stop();
    const liveMsg =
      `live: sent ${live.sent} in ${live.ms.toFixed(0)} ms (${rate(live.sent, live.ms)}); ` +
      `received ${s['received']}, lost ${s['lost']}, overruns ${s['overruns']}`;
    // 2. Backlog: the reader is stopped while the burst queues in a 64 MiB buffer,
    //    then drains it; first-to-last packet time is the reader's own rate.
    child = new NsChild(['read', String(GROUP), '--summary', '--buffer-bytes', String(64 << 20)]);
    await child.waitFor((l) => l['ready'] === true, 'reader ready');
    child.signal('SIGSTOP');
    const queued = await flood(10, N);
    child.signal('SIGCONT');
    await new Promise((r) => setTimeout(r, 1500));
    s = await child.stop();
    const drainMs = (s['lastMs'] as number) - (s['firstMs'] as number);
    const drainMsg =
      `drain: ${s['received']} queued packets read in ${drainMs.toFixed(0)} ms (${rate(s['received'] as number, drainMs)}); ` +
      `lost ${s['lost']}, overruns ${s['overruns']} of ${queued.sent}`;
    t.diagnostic(liveMsg);
    t.diagnostic(drainMsg);
    assert.ok((s['received'] as number) > 0);
  });
});
