// Drift, after the imports and the rollback: a price is edited and an
// account deleted directly on the host; the drift page shows both findings
// (the price with its field diff), one is repaired and the other ignored,
// and a new check has nothing open.
import { test, expect, APIRequestContext } from '@playwright/test';
import { env, signIn, watchErrors, ADMIN, Env } from './env';

async function admin(request: APIRequestContext, e: Env, method: string, path: string, data?: unknown): Promise<any> {
  const r = await request.fetch(`${e.host.url}/api/v1/admin/${path}`, { method, headers: { 'x-api-key': e.host.key }, data });
  expect(r.ok()).toBeTruthy();
  return (await r.json()).data;
}

test('an edited price and a deleted account are found, one repaired, one ignored', async ({ page }, info) => {
  const e = env(info);
  const errors = watchErrors(page);
  await signIn(page, e, ADMIN);
  // Out of band, on the host.
  const channels = (await admin(page.request, e, 'GET', 'channels?page_size=1000')).items;
  const ch = channels.find((c: any) => c.name === 'relay-ds');
  const pricing = ch.model_pricing.map((p: any) => ({ ...p, output_price: 0.5 }));
  await admin(page.request, e, 'PUT', `channels/${ch.id}`, { ...ch, model_pricing: pricing });
  const accounts = (await admin(page.request, e, 'GET', `accounts?search=rm-ds-&page_size=1000&group=${ch.group_ids[0]}`)).items;
  expect(accounts.length).toBeGreaterThan(0);
  await admin(page.request, e, 'DELETE', `accounts/${accounts[0].id}`);
  // The host's drift page.
  await page.goto(`${e.url}/batches/1`);
  await page.locator('dl.facts a').first().click();
  await page.getByTestId('drift').click();
  await expect(page).toHaveURL(/\/hosts\/\d+\/drift$/);
  await page.getByTestId('drift-check').click();
  await expect(page.getByTestId('flash')).toContainText('2 open finding(s)');
  const price = page.locator('tr[data-class=modified][data-kind=channel]');
  await expect(price.getByTestId('drift-diff')).toContainText('price deepseek/deepseek-flash');
  await expect(price.getByTestId('drift-diff')).toContainText('0.5');
  const gone = page.locator('tr[data-class=missing][data-kind=account]');
  await expect(gone).toBeVisible();
  // Repair the price; ignore the deleted account with a reason.
  await price.getByTestId('drift-reapply').click();
  await expect(page.getByTestId('flash')).toContainText('channel');
  await page.locator('tr[data-class=missing][data-kind=account]').getByTestId('drift-reason').fill('replaced by hand, tracked in the ops ticket');
  await page.locator('tr[data-class=missing][data-kind=account]').getByTestId('drift-ignore').click();
  await expect(page.getByTestId('flash')).toContainText('Ignored');
  await page.getByTestId('drift-check').click();
  await expect(page.getByTestId('flash')).toContainText('0 open finding(s)');
  await expect(page.getByTestId('drift-clean')).toBeVisible();
  await expect(page.getByTestId('drift-counts')).toContainText('ignored 1');
  // The host has the applied price again.
  const back = (await admin(page.request, e, 'GET', `channels/${ch.id}`));
  expect(back.model_pricing.every((p: any) => p.output_price !== 0.5)).toBeTruthy();
  expect(errors).toEqual([]);
});
