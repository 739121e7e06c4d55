/**
 * Test fixtures for the kube-*.test.ts files: a real lab API server on
 * 127.0.0.1 port 0 with a kubeconfig in a temp dir, and `run(args)` that drives
 * the commands in-process through a fresh commander program, returning what a
 * person would have seen and the exit status main.ts would have set.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { startApiServer, writeKubeconfig, type ApiServer } from '../../src/apiserver/index.ts';
import { registerKubeCommands } from '../../src/cli/kube-commands.ts';
import { CliError } from '../../src/cli/style.ts';

export interface RunResult {
  stdout: string;
  stderr: string;
  /** 0, a CliError's code, 2 for a usage error, or what the command set (exec). */
  code: number;
}

export interface KubeTestLab {
  server: ApiServer;
  dir: string;
  kubeconfig: string;
  /** Runs `palisade <args>` with --kubeconfig pointing at the test server. */
  run(args: string[], opts?: { stdin?: string; tty?: boolean }): Promise<RunResult>;
  /** Writes a file in the temp dir and returns its path. */
  file(name: string, text: string): Promise<string>;
  /** A raw JSON request to the server (for what a controller would do: set pod status). */
  call(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function runKube(args: string[], opts: { stdin?: string; tty?: boolean } = {}): Promise<RunResult> {
  const result: RunResult = { stdout: '', stderr: '', code: 0 };
  const program = new Command('palisade').exitOverride().configureOutput({
    writeOut: (s) => { result.stdout += s; },
    writeErr: (s) => { result.stderr += s; },
  });
  registerKubeCommands(program, {
    out: (s) => { result.stdout += s; },
    err: (s) => { result.stderr += s; },
    isTTY: opts.tty === true,
    setExitCode: (code) => { result.code = code; },
    stdin: Readable.from([opts.stdin ?? '']),
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CliError) {
      result.stderr += `error: ${e.message}\n`;
      result.code = e.exitCode;
    } else if (e instanceof CommanderError) {
      result.code = e.exitCode === 0 ? 0 : 2;
    } else {
      throw e;
    }
  }
  return result;
}

const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** `palisade <args>` as a real process, for commands that must own the real stdio (exec). */
export function runCliProcess(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function startKubeTestLab(): Promise<KubeTestLab> {
  const dir = await mkdtemp(join(tmpdir(), 'palisade-kube-'));
  const server = await startApiServer({ port: 0, dataFile: join(dir, 'apiserver-data.json') });
  const kubeconfig = join(dir, 'kubeconfig');
  await writeKubeconfig(kubeconfig, server.url);
  return {
    server,
    dir,
    kubeconfig,
    run: (args, opts) => runKube(args.length === 0 ? args : [args[0]!, '--kubeconfig', kubeconfig, ...args.slice(1)], opts),
    async file(name, text) {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    },
    async call(method, path, body, contentType = 'application/json') {
      const res = await fetch(server.url + path, {
        method,
        headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': contentType } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = JSON.parse(text); } catch { /* keep text */ }
      return { status: res.status, body: parsed };
    },
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Two pods, a service and two policies in namespace `shop`: one of every applied kind. */
export const SHOP_MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Pod
metadata:
  name: frontend
  namespace: shop
  labels: {app: frontend}
spec:
  containers: [{name: web, command: [palisade, workload, http-echo]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: backend
  namespace: shop
  labels: {app: backend}
spec:
  containers: [{name: api}]
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: shop}
spec:
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080}]
  clusterIP: 10.96.0.20
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-fe, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET, path: "/api/.*"}]}}]
  egress:
  - toFQDNs: [{matchName: api.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`;
