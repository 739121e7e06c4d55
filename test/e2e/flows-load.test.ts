/**
 * Flow load (root): a pod floods another with UDP that policy drops, so the
 * datapath logs every packet; for 10 s the agent must keep answering, keep
 * its memory bounded, and account for every event it could not keep (lost
 * events are counted, never silent).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { labName, requireRoot, startLab, type TestLab } from './lab-kit.ts';
import { agentSocketPath, podNetns } from '../../src/lab/paths.ts';
import { unixRequest } from '../../src/lab/unix-http.ts';

requireRoot();
let lab: TestLab;

before(async () => {
  lab = await startLab(labName('e2eload'), 1);
  lab.apply(`
apiVersion: v1
kind: Pod
metadata: {name: target, namespace: default, labels: {app: target}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: flooder, namespace: default, labels: {app: flooder}}
spec: {containers: [{name: c}]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: lockdown, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: target}}
  ingress: [{}]
`);
});
after(async () => {
  await lab?.down();
});

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

test('a 10 s flood of dropped packets: the agent stays responsive, bounded, and counts what it loses', async () => {
  const sock = agentSocketPath(lab.name, 'node-1');
  const agentPid = lab.state.agents['node-1']!.pid;
  const targetIp = (JSON.parse(lab.cli(['get', 'pods', 'target', '-o', 'json']).out) as { status: { podIP: string } }).status.podIP;
  type Status = { flows: { seen_flows: number; num_flows: number; max_flows: number; lost: Record<string, number> }; drops: { endpoint: string; packets: number }[] };
  const dropped = (st: Status): number => st.drops.filter((d) => d.endpoint === 'default/target').reduce((t, d) => t + d.packets, 0);
  const status = async (): Promise<Status> => JSON.parse((await unixRequest(sock, 'GET', '/v1/status')).body) as Status;
  const before = await status();
  const rss0 = rssMiB(agentPid);
  // 200,000 16-byte datagrams per second, each one a logged drop: sockperf
  // (Debian) in throughput mode needs no server. On a 2-core machine the
  // sender, the kernel and the agent share the cores, so the rate reached is printed.
  const flood = spawn('ip', ['netns', 'exec', podNetns(lab.name, 'default', 'flooder'), 'sockperf', 'tp', '-i', targetIp, '-p', '9999', '-m', '16', '-t', '10', '--mps', '200000']);
  let out = '';
  flood.stdout.on('data', (d: Buffer) => (out += d.toString()));
  flood.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((r) => flood.on('close', () => r()));
  let worst = 0;
  let rssMax = rss0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const t = performance.now();
      // One retry on a reset: under a flood the host itself may drop a unix connection; a second miss is a failure.
      const r = await unixRequest(sock, 'GET', '/healthz', undefined, 5000).catch(() => unixRequest(sock, 'GET', '/healthz', undefined, 5000));
      assert.equal(r.status, 200);
      worst = Math.max(worst, performance.now() - t);
      rssMax = Math.max(rssMax, rssMiB(agentPid));
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  await done;
  polling = false;
  await poll;
  // Let the reader drain: wait until the counts stand still (at most 10 s).
  const accounted = (s: Status): number => s.flows.seen_flows + Object.values(s.flows.lost).reduce((a, b) => a + b, 0);
  let st = await status();
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const next = await status();
    const still = accounted(next) === accounted(st) && dropped(next) === dropped(st);
    st = next;
    if (still) break;
  }
  const m = /Total of (\d+) messages sent in ([\d.]+) sec/.exec(out);
  assert.ok(m, `sockperf's summary: ${out}`);
  const sent = Number(m[1]);
  const seconds = Number(m[2]);
  // The datapath's own drop counter sits in the same rule as the log statement:
  // every packet it counts was handed to the agent as an event.
  const events = dropped(st) - dropped(before);
  const seen = st.flows.seen_flows - before.flows.seen_flows;
  const lost = Object.values(st.flows.lost).reduce((a, b) => a + b, 0) - Object.values(before.flows.lost).reduce((a, b) => a + b, 0);
  console.log(`# sent ${sent} in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s), ${events} drop events; recorded ${seen}, lost ${lost}; worst /healthz ${worst.toFixed(0)} ms; agent RSS ${rss0.toFixed(0)} → max ${rssMax.toFixed(0)} MiB`);
  // A flood, not a trickle (once only `sent > 0`): 5,000/s at least. Runs here reached
  // 21,000-98,000/s with other labs on the two cores; the rate asked for is 200,000/s.
  assert.ok(sent / seconds >= 5_000, `the flood reached ${Math.round(sent / seconds)} datagrams/s`);
  assert.ok(worst < 1000, `the agent answered /healthz within ${worst.toFixed(0)} ms at worst`);
  assert.ok(rssMax < 512, `memory stays bounded (RSS at most ${rssMax.toFixed(0)} MiB)`);
  assert.ok(st.flows.num_flows <= st.flows.max_flows, 'the ring never holds more than its capacity');
  // Every event the datapath produced is either a record or a counted loss. (Packets the
  // kernel dropped before netfilter, under this load, never became events.)
  assert.ok(events > 0 && events <= sent, `${events} drop events for ${sent} packets sent`);
  // The loss probe reveals the tail of the burst too, so the accounting is exact (seen so
  // in every run here) but for one kind of loss nothing can count: a log message the kernel
  // could not allocate takes no sequence number. 0.1 % slack for that; the bug this guards
  // against left 2.9 % unaccounted.
  assert.ok(seen + lost >= events * 0.999, `recorded ${seen} + lost ${lost} account for the ${events} drop events`);
});
