import { readFileSync } from 'node:fs';
import { Page, TestInfo, expect } from '@playwright/test';

export interface Env {
  url: string;
  token: string;
  host: { url: string; key: string; upstream: string; keys: string[]; exhausted: string; recharge: string };
  gated: { url: string; key: string };
}

export function env(info: TestInfo): Env {
  const all = JSON.parse(readFileSync(process.env.RELAY_E2E_ENV!, 'utf8'));
  return all.projects[info.project.name];
}

export const ADMIN = { username: 'admin', password: 'admin password for e2e' };
export const VIEWER = { username: 'reviewer', password: 'viewer password for e2e' };

export async function signIn(page: Page, e: Env, who: { username: string; password: string }) {
  await page.goto(`${e.url}/login`);
  await page.fill('input[name=username]', who.username);
  await page.fill('input[name=password]', who.password);
  await page.click('form button[type=submit]');
  await expect(page.getByTestId('who')).toContainText(who.username);
}

/** Collects browser errors; a hydrated page must log none. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('console', m => {
    // A form answered with a 4xx (on purpose, for bad input) is logged by
    // the browser as a failed load; that is not a page error.
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) errors.push(m.text());
  });
  return errors;
}
