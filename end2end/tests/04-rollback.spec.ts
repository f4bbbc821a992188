// Rollback and pause, after the imports and the review: the account of the
// exhausted key's batch is paused, resumed, then removed; the subscription batch is
// rolled back from its page (preview, a wrong confirmation refused, the
// right one accepted, progress, rolled_back), and the host keeps nothing of
// it.
import { test, expect, APIRequestContext } from '@playwright/test';
import { env, signIn, watchErrors, ADMIN, Env } from './env';

async function hostItems(request: APIRequestContext, e: Env, what: string): Promise<any[]> {
  const r = await request.get(`${e.host.url}/api/v1/admin/${what}`, { headers: { 'x-api-key': e.host.key } });
  expect(r.ok()).toBeTruthy();
  const body = await r.json();
  return body.data.items ?? body.data;
}

test.describe.serial('rollback', () => {
  test('the failed key\'s account is paused, resumed and removed', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/batches/3`);
    await expect(page.locator('h1 [data-status=failed]')).toBeVisible();
    await page.getByTestId('pause-failed').click();
    await expect(page.getByTestId('flash')).toContainText('Paused 1 account(s)');
    const paused = (await hostItems(page.request, e, 'accounts?page_size=1000')).filter(a => !a.schedulable);
    expect(paused.length).toBe(1);
    await expect(page.locator('h3[data-run-kind=pause]')).toHaveCount(1);
    // Only what applies is offered: nothing is left to pause, one to resume.
    await expect(page.getByTestId('pause-failed')).toHaveCount(0);
    await expect(page.getByTestId('resume-failed')).toContainText('(1)');
    await page.getByTestId('resume-failed').click();
    await expect(page.getByTestId('flash')).toContainText('Resumed 1 account(s)');
    await expect(page.getByTestId('resume-failed')).toHaveCount(0);
    await expect(page.getByTestId('pause-failed')).toBeVisible();
    expect((await hostItems(page.request, e, 'accounts?page_size=1000')).filter(a => !a.schedulable).length).toBe(0);
    // Removing needs the box ticked; then only that account goes.
    const before = (await hostItems(page.request, e, 'accounts?page_size=1000')).length;
    await page.getByTestId('remove-failed-confirm').check();
    await page.getByTestId('remove-failed').click();
    await expect(page.getByTestId('flash')).toContainText('Removed 1 account(s)');
    expect((await hostItems(page.request, e, 'accounts?page_size=1000')).length).toBe(before - 1);
    await expect(page.locator('h3[data-run-kind=repair]')).toHaveCount(1);
    // Nothing is left to pause or remove, so the actions are gone.
    await expect(page.getByTestId('pause-failed')).toHaveCount(0);
    await expect(page.locator('h1 [data-status=failed]')).toBeVisible();
    expect(errors).toEqual([]);
  });

  test('a ready batch is rolled back from its page and the host keeps nothing of it', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    const accountsBefore = (await hostItems(page.request, e, 'accounts?page_size=1000')).length;
    await page.goto(`${e.url}/batches/2`);
    await expect(page.locator('[data-testid=group-access] [data-access=subscription_ready]')).toBeVisible();
    await page.getByTestId('rollback').click();
    await expect(page).toHaveURL(/\/batches\/2\/rollback$/);
    const preview = page.getByTestId('rollback-preview');
    // 3 accounts, the group, the channel, the probe user's key and subscription.
    await expect(preview.locator('tr[data-decision=remove]')).toHaveCount(7);
    await expect(preview.locator('tbody tr').first()).toHaveAttribute('data-kind', 'user_key');
    await expect(preview.locator('tbody tr').last()).toHaveAttribute('data-kind', 'group');
    await page.locator('input[name=confirm]').fill('99');
    await page.getByTestId('confirm-rollback').click();
    await expect(page.locator('body')).toContainText('type the batch number (2) to confirm');
    await expect(page.getByTestId('rollback-preview')).toBeVisible();
    await page.locator('input[name=confirm]').fill('2');
    await page.getByTestId('confirm-rollback').click();
    await expect(page).toHaveURL(/\/batches\/2$/);
    await expect(page.locator('h1 [data-status=rolled_back]')).toBeVisible({ timeout: 45_000 });
    await expect(page.locator('h3[data-run-kind=rollback]')).toHaveCount(1);
    await expect(page.getByTestId('rollback')).toHaveCount(0);
    expect((await hostItems(page.request, e, 'accounts?page_size=1000')).length).toBe(accountsBefore - 3);
    const groups = await hostItems(page.request, e, 'groups?page_size=1000');
    expect(groups.filter(g => g.name === 'relay-ds-sub').length).toBe(0);
    const channels = await hostItems(page.request, e, 'channels?page_size=1000');
    expect(channels.filter(c => c.name === 'relay-ds-sub').length).toBe(0);
    expect(errors).toEqual([]);
  });
});
