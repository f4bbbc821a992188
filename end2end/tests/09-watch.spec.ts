// Keeping watch, after the lifecycle spec left a succeeded, ready batch: it
// is re-checked now and its key's balance read on its page (through the
// host's CN balance route); the host's
// schedule is changed; a WeCom-format webhook is added (its secret shown
// once) and a test delivered, shown in the delivery log; the overview has
// its watching section.
import { test, expect } from '@playwright/test';
import { env, signIn, watchErrors, noEnglish, ADMIN } from './env';

test('a ready batch is re-checked, balances read, a schedule set and a webhook tested', async ({ page }, info) => {
  const e = env(info);
  const errors = watchErrors(page);
  await signIn(page, e, ADMIN);
  const shots = process.env.RELAY_SHOTS;

  // The lifecycle spec's batch: its one key passed after the recharge.
  await page.goto(`${e.url}/batches?status=succeeded`);
  await page.locator('tr', { has: page.getByTestId('batch-keys').filter({ hasText: /^1 \/ 1 passed$/ }) })
    .locator('td a[href^="/batches/"]').first().click();
  await expect(page.getByTestId('no-checks')).toBeVisible();
  const batchUrl = page.url();
  await page.getByTestId('recheck').click();
  await expect(page.getByTestId('flash')).toContainText('Re-checked: ready');
  await expect(page.locator('tr[data-testid=check][data-outcome=ready]')).toHaveCount(1);
  await expect(page.getByTestId('checks')).toContainText('POST /v1/chat/completions answered');
  await page.getByTestId('read-balances').click();
  // A native deepseek account: the host's own balance route asks the
  // provider (recharged by the lifecycle spec) with the account's key.
  await expect(page.getByTestId('flash')).toContainText('Balances read for 1 key(s): 1 known, 0 unknown, 0 unsupported, 0 low');
  await expect(page.locator('tr[data-testid=balance][data-state=known]')).toHaveCount(1);
  await expect(page.getByTestId('balances')).toContainText('110.00 CNY');
  if (shots) await page.getByTestId('batch-watch').screenshot({ path: `${shots}/batch-watch-${info.project.name}.png` });

  // The host's schedule: every job listed with what it costs; probe every 2 min.
  await page.locator('dl.facts a').first().click();
  await expect(page.locator('tr[data-testid=schedule-row]')).toHaveCount(4);
  const probe = page.locator('tr[data-testid=schedule-row][data-job=probe]');
  await probe.locator('input[name=interval_s]').fill('120');
  await probe.getByTestId('schedule-save').click();
  await expect(page.getByTestId('flash')).toContainText('Schedule saved: probe every 120 s');
  await expect(page.locator('tr[data-testid=schedule-row][data-job=probe]')).toContainText('2 min');
  if (shots) await page.getByTestId('schedule').screenshot({ path: `${shots}/schedule-${info.project.name}.png` });

  // Webhooks: added with a made secret shown once, tested, logged.
  await page.goto(`${e.url}/webhooks`);
  await expect(page.getByTestId('no-webhooks')).toBeVisible();
  const form = page.getByTestId('webhook-form');
  await form.locator('input[name=name]').fill(`on-call ${info.project.name}`);
  await form.locator('input[name=url]').fill(`${e.host.upstream}/_fake/hook?key=bot-token-${info.project.name}`);
  await form.locator('select[name=format]').selectOption('wecom');
  await form.locator('button[type=submit]').click();
  await expect(page.getByTestId('flash')).toContainText('signing secret is below');
  await expect(page.getByTestId('shown-once')).toContainText('whsec_');
  await page.goto(`${e.url}/webhooks`);
  await expect(page.getByTestId('shown-once')).toHaveCount(0);
  await expect(page.getByTestId('webhooks')).not.toContainText('bot-token');
  await page.getByTestId('test-webhook').click();
  await expect(page.getByTestId('flash')).toContainText('Test delivered');
  await expect(page.locator('tr[data-testid=delivery][data-state=delivered]')).toHaveCount(1);
  await expect(page.getByTestId('deliveries')).toContainText('HTTP 200');
  if (shots) await page.screenshot({ path: `${shots}/webhooks-${info.project.name}.png`, fullPage: true });

  await page.goto(`${e.url}/`);
  await expect(page.getByTestId('watching')).toBeVisible();
  await expect(page.getByTestId('no-incidents')).toBeVisible();
  if (shots) await page.getByTestId('watching').screenshot({ path: `${shots}/overview-watch-${info.project.name}.png` });
  // The same pages in Chinese say nothing in English.
  await page.goto(`${e.url}/lang?to=zh`);
  await page.goto(batchUrl);
  await expect(page.getByTestId('batch-watch')).toContainText('已应答');
  await noEnglish(page, 'batch page with checks and balances');
  if (shots) await page.getByTestId('batch-watch').screenshot({ path: `${shots}/batch-watch-zh-${info.project.name}.png` });
  await page.goto(`${e.url}/webhooks`);
  await noEnglish(page, 'webhooks');
  if (shots) await page.screenshot({ path: `${shots}/webhooks-zh-${info.project.name}.png`, fullPage: true });
  await page.goto(`${e.url}/lang?to=en`);
  expect(errors).toEqual([]);
});
