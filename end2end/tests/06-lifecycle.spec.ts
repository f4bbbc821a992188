// A batch's lifecycle after the earlier specs: a plan discarded before it
// was applied writes nothing on the host; a batch whose only key had no
// balance is retried once the provider account is recharged and ends
// succeeded; the host's accounts page finds the account by its key mask.
import { test, expect, Page } from '@playwright/test';
import { env, signIn, watchErrors, ADMIN, Env } from './env';

async function accountsOnHost(page: Page, e: Env): Promise<number> {
  const r = await page.request.get(`${e.host.url}/api/v1/admin/accounts?page=1&page_size=1`, {
    headers: { 'x-api-key': e.host.key },
  });
  expect(r.ok()).toBeTruthy();
  return (await r.json()).data.total;
}

async function plan(page: Page, e: Env, key: string) {
  await page.goto(`${e.url}/batches/new`);
  const form = page.getByTestId('batch-form');
  const host = await form.locator('select[name=host_id] option', { hasText: 'prod-cn (' }).first().getAttribute('value');
  await form.locator('select[name=host_id]').selectOption(host!);
  const prov = await form.locator('select[name=provider] option', { hasText: 'e2e-pack/ds' }).first().getAttribute('value');
  await form.locator('select[name=provider]').selectOption(prov!);
  await form.locator('textarea[name=keys]').fill(key);
  await form.locator('button[type=submit]').click();
  await expect(page.getByTestId('flash')).toContainText('Plan ready');
  await expect(page.locator('h1 [data-status=planned]')).toBeVisible();
}

test.describe.serial('lifecycle', () => {
  test('a discarded plan writes nothing on the host and can no longer be applied', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    const before = await accountsOnHost(page, e);
    await plan(page, e, e.host.recharge);
    await expect(page.getByTestId('apply')).toHaveText('Apply');
    await page.getByTestId('discard-confirm').check();
    await page.getByTestId('discard').click();
    await expect(page.getByTestId('flash')).toContainText('Discarded: nothing was sent to the host');
    await expect(page.locator('h1 [data-status=discarded]')).toBeVisible();
    await expect(page.getByTestId('apply')).toHaveCount(0);
    await expect(page.getByTestId('discard')).toHaveCount(0);
    expect(await accountsOnHost(page, e)).toBe(before);
    expect(errors).toEqual([]);
  });

  test('the failed key is retried after a recharge and the batch ends succeeded', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    // The discarded plan held nothing: the same key plans again.
    await plan(page, e, e.host.recharge);
    await page.getByTestId('apply').click();
    await expect(page.locator('h1 [data-status=failed]')).toBeVisible({ timeout: 45_000 });
    await expect(page.getByTestId('key-outcomes')).toHaveText('0 / 1 passed · 1 failed');
    // Before any retry: the button says what it does.
    const retry = page.getByTestId('apply');
    await expect(retry).toHaveText('Retry the 1 failed key(s)');
    const accounts = await accountsOnHost(page, e);
    const r = await page.request.post(`${e.host.upstream}/_fake/recharge`, { data: { key: e.host.recharge } });
    expect(r.status()).toBe(204);
    await retry.click();
    await expect(page.locator('h1 [data-status=succeeded]')).toBeVisible({ timeout: 45_000 });
    await expect(page.getByTestId('key-outcomes')).toHaveText('1 / 1 passed');
    await expect(page.getByTestId('apply')).toHaveText('Re-check readiness (writes nothing new)');
    expect(await accountsOnHost(page, e)).toBe(accounts);
    await expect(page.locator('body')).not.toContainText(e.host.recharge);
    expect(errors).toEqual([]);
  });

  test('the accounts page finds the account by its key mask', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/hosts`);
    await page.locator('a', { hasText: 'prod-cn' }).first().click();
    await page.getByTestId('accounts-link').click();
    const rows = page.getByTestId('account-row');
    const all = await rows.count();
    expect(all).toBeGreaterThan(1);
    const search = page.getByTestId('account-search');
    await search.locator('input[name=q]').fill('sk-…0001');
    await search.locator('button[type=submit]').click();
    await expect(page.getByTestId('account-count')).toContainText('match');
    // Masks are short: several keys end in 0001, each row with its own
    // fingerprint, batch and last test.
    const found = rows.filter({ hasText: 'sk-…0001' });
    expect(await found.count()).toBeGreaterThan(0);
    expect(await rows.count()).toBeLessThan(all);
    await expect(rows.filter({ has: page.locator('[data-test-state=done]') }).first()).toBeVisible();
    for (const k of [...e.host.keys, e.host.recharge]) await expect(page.locator('body')).not.toContainText(k);
    await search.locator('input[name=q]').fill('no-such-mask');
    await search.locator('button[type=submit]').click();
    await expect(page.locator('body')).toContainText('No account matches.');
  });
});
