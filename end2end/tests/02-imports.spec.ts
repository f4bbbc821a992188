// Packs and import batches, run after the foundation flows (the admin and
// the host exist): a broken pack shows located errors, a good one is
// stored, three keys are imported in each access mode and reach ready, and
// the timeline keeps the evidence.
import { test, expect, Page } from '@playwright/test';
import { env, signIn, watchErrors, ADMIN, Env } from './env';

function packFor(e: Env): string {
  return `schema: 1
id: e2e-pack
name: E2E DeepSeek
providers:
  ds:
    display_name: DeepSeek (fake upstream)
    native_platform: deepseek
    base_url: ${e.host.upstream}
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price: { currency: USD, input: 0.30, output: 1.20, source: https://api-docs.deepseek.com/quick_start/pricing, verified: 2026-11-01 }
    group:
      validity_days: 30
    access:
      mode: self_service
`;
}

async function pick(select: import('@playwright/test').Locator, text: string) {
  const value = await select.locator('option', { hasText: text }).first().getAttribute('value');
  await select.selectOption(value!);
}

async function importBatch(page: Page, e: Env, mode: string, keys: string[], ready: string) {
  const errors = watchErrors(page);
  await page.goto(`${e.url}/batches/new`);
  const form = page.getByTestId('batch-form');
  await pick(form.locator('select[name=host_id]'), 'prod-cn (');
  await pick(form.locator('select[name=provider]'), 'e2e-pack/ds');
  await form.locator('select[name=mode]').selectOption(mode);
  await form.locator('textarea[name=keys]').fill(keys.join('\n'));
  await form.locator('button[type=submit]').click();
  await expect(page).toHaveURL(/\/batches\/\d+$/);
  await expect(page.getByTestId('flash')).toContainText('Plan ready');
  const timeline = page.getByTestId('timeline');
  await expect(timeline.locator('tr[data-kind=account]')).toHaveCount(keys.length);
  await expect(page.locator('[data-status=planned]')).toBeVisible();
  // The plan shows the keys masked only.
  for (const k of keys) await expect(page.locator('body')).not.toContainText(k);
  await page.getByTestId('apply').click();
  // Progress refreshes the page until the batch ends.
  await expect(page.locator('h1 [data-status=succeeded]')).toBeVisible({ timeout: 45_000 });
  await expect(page.locator(`[data-testid=group-access] [data-access=${ready}]`)).toBeVisible();
  await expect(page.getByTestId('key-outcomes')).toHaveText(`${keys.length} / ${keys.length} passed`);
  // Prices per million tokens, not in exponent notation.
  await expect(page.getByTestId('prices')).toContainText('$');
  await expect(page.getByTestId('prices')).not.toContainText('e-');
  await expect(page.getByTestId('progress')).toContainText(`${keys.length * 2 + 5} / ${keys.length * 2 + 5}`);
  // The readiness evidence: the request and the answer, key masked.
  const row = timeline.locator('tr[data-kind=readiness]');
  await row.locator('summary').click();
  await expect(row.locator('pre.evidence').first()).toContainText('Bearer sk-…');
  await expect(row.locator('pre.evidence').nth(1)).toContainText('deepseek-flash');
  // Every page of the flow hydrated cleanly (or, without JavaScript, did not try).
  expect(errors).toEqual([]);
}

test.describe.serial('imports', () => {
  test('a broken pack shows every problem with its line; a good one is stored', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/packs`);
    await expect(page.getByTestId('packs')).toContainText('cn-official');
    const broken = packFor(e).replace('smoke_model: deepseek-flash', 'smoke_model: deepseek-chat').replace('input: 0.30', 'input: -1');
    await page.locator('textarea[name=source]').fill(broken);
    await page.getByTestId('pack-form').locator('button[type=submit]').click();
    await expect(page.getByTestId('flash')).toContainText('The pack has 2 problems; nothing was stored.');
    const issues = page.getByTestId('issues');
    await expect(issues).toContainText('line 9, providers.ds.smoke_model');
    await expect(issues).toContainText('expected one of: deepseek-flash');
    await expect(issues).toContainText('providers.ds.models.deepseek-flash.price.input');
    // The text is kept for fixing.
    await expect(page.locator('textarea[name=source]')).toHaveValue(/deepseek-chat/);
    await page.locator('textarea[name=source]').fill(packFor(e));
    await page.getByTestId('pack-form').locator('button[type=submit]').click();
    await expect(page).toHaveURL(/\/packs\/\d+$/);
    await expect(page.getByTestId('flash')).toContainText('Pack version stored.');
    await expect(page.locator('body')).toContainText('DeepSeek (fake upstream)');
  });

  test('three keys in self-service mode reach ready', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await importBatch(page, e, 'self_service', e.host.keys.slice(0, 3), 'self_service_ready');
  });

  test('three keys in subscription mode reach ready', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await importBatch(page, e, 'subscription', e.host.keys.slice(3, 6), 'subscription_ready');
    await page.goto(`${e.url}/batches`);
    await expect(page.getByTestId('batches').locator('tbody tr')).toHaveCount(2);
  });
});
