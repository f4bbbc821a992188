import { readFileSync } from 'node:fs';

export default async function globalTeardown() {
  const file = process.env.RELAY_E2E_ENV;
  if (!file) return;
  const { pids } = JSON.parse(readFileSync(file, 'utf8'));
  for (const pid of pids) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
  }
}
