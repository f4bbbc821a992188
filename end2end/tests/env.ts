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

// Words of the product's English messages (function words and its nouns);
// none of them is in the test data's names.
export const ENGLISH =
  /\b(the|and|is|are|was|of|to|with|not|for|this|that|from|by|its|has|have|yet|every|keys?|accounts?|batch(es)?|hosts?|failed|passed|done|pending|ready|groups?|channels?|steps?|what|which|cannot|could|skipped|already|imported|waiting|listing|platform|readiness|gate|probe|user|balance|subscription|test(ed)?|needs?|none|never|nothing|will|only|once|here|there)\b/i;

/** Text of the page's main part the product wrote, outside data and evidence. */
export async function englishOn(page: Page): Promise<string[]> {
  return page.evaluate((source) => {
    const re = new RegExp(source, 'i');
    const skip = 'code, pre, script, style, textarea, .mono, .evidence, option, [data-data]';
    const out: string[] = [];
    const main = document.querySelector('main');
    if (!main) return ['(no main)'];
    const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const n = walker.currentNode;
      const el = n.parentElement;
      if (!el || el.closest(skip)) continue;
      const t = (n.textContent || '').trim();
      if (t && re.test(t)) out.push(t);
    }
    return out;
  }, ENGLISH.source);
}

export async function noEnglish(page: Page, what: string) {
  const found = await englishOn(page);
  expect.soft(found, `${what}: English server text in zh-CN`).toEqual([]);
}
