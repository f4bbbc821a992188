// Starts, for each Playwright project, a fresh dashboard (empty data dir) and
// two fake Sub2API hosts (one with the compliance gate still closed), and
// records their addresses and the dashboard's one-time setup token.
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = process.env.DASHBOARD_BIN;
const siteRoot = process.env.DASHBOARD_SITE_ROOT;

// Everything a child printed so far, kept per child: two waits on one child
// (the setup token, then the address) must both see lines that arrived in a
// single chunk, or the second wait misses its line and times out.
const output = new WeakMap<ChildProcess, { seen: string; listeners: Array<() => void> }>();

function collect(child: ChildProcess) {
  let o = output.get(child);
  if (!o) {
    const entry = { seen: '', listeners: [] as Array<() => void> };
    const onData = (d: Buffer) => {
      entry.seen += d.toString();
      for (const l of [...entry.listeners]) l();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    output.set(child, entry);
    o = entry;
  }
  return o;
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  const o = collect(child);
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = o.seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        o.listeners = o.listeners.filter(l => l !== check);
        resolve(m);
      }
    };
    const timer = setTimeout(() => reject(new Error(`${what}: no match for ${pattern} in:\n${o.seen}`)), 60_000);
    o.listeners.push(check);
    child.on('exit', code => reject(new Error(`${what} exited with ${code}:\n${o.seen}`)));
    check();
  });
}

interface Fake { child: ChildProcess; url: string; key: string; upstream: string; keys: string[]; exhausted: string; recharge: string }

async function fakeHost(extra: string[]): Promise<Fake> {
  const child = spawn(bin!, ['fake-host', '--models-cache-ttl-secs', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = (await waitFor(child, /^\{.*\}$/m, 'fake host'))[0];
  const v = JSON.parse(line);
  return { child, key: v.admin_api_key, email: v.admin_email, password: v.admin_password, url: v.url, upstream: v.upstream_url, keys: v.keys, exhausted: v.exhausted_key, recharge: v.recharge_key };
}

export default async function globalSetup() {
  if (!bin || !siteRoot) throw new Error('set DASHBOARD_BIN and DASHBOARD_SITE_ROOT (scripts/test.sh does)');
  const pids: number[] = [];
  const env: Record<string, unknown> = {};
  for (const project of ['no-js', 'hydrated']) {
    const open = await fakeHost([]);
    const gated = await fakeHost(['--compliance-required']);
    const data = mkdtempSync(join(tmpdir(), `relay-e2e-${project}-`));
    const dash = spawn(bin, ['serve'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DASHBOARD_ADDR: '127.0.0.1:0', DASHBOARD_MODELS_CACHE_WAIT_SECS: '0', DASHBOARD_DATA_DIR: data, DASHBOARD_SITE_ROOT: siteRoot, NO_COLOR: '1', RUST_LOG: 'info' },
    });
    let log = '';
    dash.stdout?.on('data', d => { log += d.toString(); });
    const token = (await waitFor(dash, /setup token ([0-9a-f]{32})/, 'dashboard'))[1];
    const url = (await waitFor(dash, /dashboard listening on (http:\/\/[0-9.:]+)/, 'dashboard'))[1];
    pids.push(open.child.pid!, gated.child.pid!, dash.pid!);
    env[project] = {
      url, token, data,
      host: { url: open.url, key: open.key, upstream: open.upstream, keys: open.keys, exhausted: open.exhausted, recharge: open.recharge },
      gated: { url: gated.url, email: gated.email, password: gated.password },
    };
  }
  const file = join(tmpdir(), 'relay-e2e-env.json');
  writeFileSync(file, JSON.stringify({ projects: env, pids }));
  process.env.RELAY_E2E_ENV = file;
}
