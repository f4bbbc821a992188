// Diagnosis and handover review, after the imports: a batch with an
// exhausted key shows its class and the next action; a reviewer (viewer)
// exports the evidence, the HTML report opens offline with the smoke
// evidence, and the reviewer is refused an import.
import { test, expect } from '@playwright/test';
import { copyFileSync } from 'node:fs';
import { env, signIn, watchErrors, ADMIN, VIEWER } from './env';

test.describe.serial('review', () => {
  test('a quota-exhausted key shows its class and what to do', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/batches/new`);
    const form = page.getByTestId('batch-form');
    const host = await form.locator('select[name=host_id] option', { hasText: 'prod-cn (' }).first().getAttribute('value');
    await form.locator('select[name=host_id]').selectOption(host!);
    const prov = await form.locator('select[name=provider] option', { hasText: 'e2e-pack/ds' }).first().getAttribute('value');
    await form.locator('select[name=provider]').selectOption(prov!);
    await form.locator('textarea[name=keys]').fill(e.host.exhausted);
    await form.locator('button[type=submit]').click();
    await expect(page.getByTestId('flash')).toContainText('Plan ready');
    await page.getByTestId('apply').click();
    // Its only key failed: the batch failed, although the group stays ready
    // through the accounts of the earlier batches, and the page says so.
    await expect(page.locator('h1 [data-status=failed]')).toBeVisible({ timeout: 45_000 });
    await expect(page.getByTestId('key-outcomes')).toHaveText('0 / 1 passed · 1 failed');
    await expect(page.locator('[data-testid=group-access] [data-access=self_service_ready]')).toBeVisible();
    await expect(page.getByTestId('proven-elsewhere')).toContainText('proven by accounts of other batches');
    const d = page.locator('[data-testid=diagnosis] li[data-class=upstream_quota_exhausted]');
    await expect(d).toBeVisible();
    await expect(d).toContainText('Recharge the provider account');
    await d.locator('summary').click();
    await expect(d.locator('pre.evidence').first()).toContainText('Insufficient Balance');
    await expect(page.locator('body')).not.toContainText(e.host.exhausted);
    // The batch page with a diagnosis and its forms hydrates cleanly.
    expect(errors).toEqual([]);
  });

  test('a reviewer exports the evidence and reads it offline, and cannot import', async ({ browser }, info) => {
    const e = env(info);
    const ctx = await browser.newContext({ javaScriptEnabled: info.project.name === 'hydrated', acceptDownloads: true });
    const page = await ctx.newPage();
    await signIn(page, e, VIEWER);
    await page.goto(`${e.url}/batches`);
    await page.getByTestId('batches').locator('a', { hasText: '#1' }).click();
    await expect(page.getByTestId('timeline')).toBeVisible();
    await expect(page.getByTestId('apply')).toHaveCount(0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-html').click()]);
    expect(download.suggestedFilename()).toBe('batch-1-evidence.html');
    // Saved as the browser would name it, so it opens as HTML.
    const file = `${await download.path()}.html`;
    copyFileSync(await download.path(), file);
    // Offline: a fresh context with no network and no JavaScript.
    const offline = await browser.newContext({ javaScriptEnabled: false, offline: true });
    const report = await offline.newPage();
    await report.goto(`file://${file}`);
    await expect(report.locator('h1')).toContainText('Evidence bundle — batch #1');
    await expect(report.locator('tr.smoke', { hasText: 'readiness gate' })).toContainText('deepseek-flash');
    await expect(report.locator('#digest')).toHaveText(/^[0-9a-f]{64}$/);
    for (const k of e.host.keys) await expect(report.locator('body')).not.toContainText(k);
    await offline.close();
    // The import page refuses, and so does the server.
    await page.goto(`${e.url}/batches/new`);
    await expect(page.locator('body')).toContainText('Your role cannot import keys');
    const csrf = await page.locator('input[name=_csrf]').first().getAttribute('value');
    const resp = await page.request.post(`${e.url}/batches/new`, {
      form: { _csrf: csrf!, host_id: '1', provider: '1:ds', keys: 'sk-aaaaaaaaaaaaaaaa' },
      maxRedirects: 0,
    });
    expect(resp.status()).toBe(403);
    await ctx.close();
  });
});
