// Handover review and four eyes, last: a reviewer takes a batch from the
// review queue, reads it, is refused a rejection without a reason, accepts
// it with a comment, and the exported report opened offline carries the
// accepted banner. Then an admin protects the host: one operator's plan
// waits for a second operator's approval, is applied once approved, and its
// rollback is approved by one and carried out by the other.
import { test, expect, Browser, Page, TestInfo } from '@playwright/test';
import { copyFileSync } from 'node:fs';
import { env, signIn, watchErrors, ADMIN, VIEWER, Env } from './env';

const OLGA = { username: 'olga', password: 'olga password for e2e' };
const OLEG = { username: 'oleg', password: 'oleg password for e2e' };

async function as(browser: Browser, info: TestInfo, e: Env, who: { username: string; password: string }): Promise<Page> {
  const ctx = await browser.newContext({ javaScriptEnabled: info.project.name === 'hydrated', acceptDownloads: true });
  const page = await ctx.newPage();
  await signIn(page, e, who);
  return page;
}

async function pick(select: import('@playwright/test').Locator, text: string) {
  const value = await select.locator('option', { hasText: text }).first().getAttribute('value');
  await select.selectOption(value!);
}

test.describe.serial('handover', () => {
  test('a reviewer accepts a batch from the queue and the offline report says so', async ({ browser }, info) => {
    const e = env(info);
    const page = await as(browser, info, e, VIEWER);
    const errors = watchErrors(page);
    await page.goto(`${e.url}/reviews`);
    const queue = page.getByTestId('review-queue');
    await expect(queue.locator('tr[data-batch="1"]')).toBeVisible();
    await queue.locator('tr[data-batch="1"] a', { hasText: '#1' }).click();
    await expect(page).toHaveURL(/\/batches\/1$/);
    await expect(page.getByTestId('review-state')).toHaveAttribute('data-state', 'not_reviewed');
    await page.getByTestId('review-link').click();
    await expect(page).toHaveURL(/\/batches\/1\/review$/);
    await expect(page.getByTestId('evidence-digest')).toHaveText(/^[0-9a-f]{64}$/);
    await expect(page.getByTestId('review-evidence-html')).toBeVisible();
    // A rejection needs a reason: refused, nothing recorded.
    await page.getByTestId('decision-rejected').check();
    await page.getByTestId('record-decision').click();
    await expect(page.locator('body')).toContainText('is needed when you reject or ask for changes');
    await page.getByTestId('decision-accepted').check();
    await page.getByTestId('review-comment').fill('readiness and prices checked');
    await page.getByTestId('record-decision').click();
    await expect(page).toHaveURL(/\/batches\/1(#review)?$/);
    await expect(page.getByTestId('flash')).toContainText('Decision recorded: accepted');
    await expect(page.getByTestId('review-state')).toHaveAttribute('data-state', 'accepted');
    await expect(page.getByTestId('review-history').locator('tr[data-decision=accepted]')).toContainText('readiness and prices checked');
    // The report carries the signed decision; opened offline it shows the banner.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-html').click()]);
    const file = `${await download.path()}.html`;
    copyFileSync(await download.path(), file);
    const offline = await browser.newContext({ javaScriptEnabled: false, offline: true });
    const report = await offline.newPage();
    await report.goto(`file://${file}`);
    await expect(report.locator('#review-banner')).toHaveAttribute('data-review-state', 'accepted');
    await expect(report.locator('#review-banner')).toContainText(`Accepted by ${VIEWER.username}`);
    await expect(report.locator('tr.review')).toContainText('readiness and prices checked');
    await offline.close();
    // It left the queue, and the list filters by review state.
    await page.goto(`${e.url}/reviews`);
    await expect(page.locator('tr[data-batch="1"]')).toHaveCount(0);
    await page.goto(`${e.url}/batches?review=accepted`);
    await expect(page.getByTestId('batches').locator('tbody tr')).toHaveCount(1);
    await expect(page.getByTestId('batch-review').first()).toContainText('accepted');
    expect(errors).toEqual([]);
    await page.context().close();
  });

  test('on a protected host one operator plans, another approves, and neither acts alone', async ({ page, browser }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    for (const who of [OLGA, OLEG]) {
      await page.goto(`${e.url}/operators`);
      const form = page.getByTestId('operator-form');
      await form.locator('input[name=username]').fill(who.username);
      await form.locator('input[name=password]').fill(who.password);
      await form.locator('select[name=role]').selectOption('operator');
      await form.locator('button[type=submit]').click();
      await expect(page.getByTestId('flash')).toContainText(`Operator ${who.username} added as operator`);
    }
    await page.goto(`${e.url}/hosts`);
    await page.click('text=prod-cn');
    await expect(page.getByTestId('host-protected')).toHaveAttribute('data-protected', 'false');
    await page.getByTestId('protect-toggle').click();
    await expect(page.getByTestId('flash')).toContainText('The host is protected');
    await expect(page.getByTestId('host-protected')).toHaveAttribute('data-protected', 'true');

    // Olga plans: nothing to apply until someone else approves.
    const olga = await as(browser, info, e, OLGA);
    const errors = watchErrors(olga);
    await olga.goto(`${e.url}/batches/new`);
    const form = olga.getByTestId('batch-form');
    await pick(form.locator('select[name=host_id]'), 'prod-cn (');
    await pick(form.locator('select[name=provider]'), 'e2e-pack/ds');
    await form.locator('textarea[name=keys]').fill(e.host.keys.slice(6, 8).join('\n'));
    await form.locator('button[type=submit]').click();
    await expect(olga.getByTestId('flash')).toContainText('Plan ready');
    const url = olga.url();
    await expect(olga.getByTestId('apply')).toHaveCount(0);
    await expect(olga.getByTestId('apply-needs-approval')).toBeVisible();
    await expect(olga.getByTestId('apply-approval')).toHaveAttribute('data-approved', 'false');
    await expect(olga.getByTestId('approve-own')).toBeVisible();
    await expect(olga.getByTestId('approve-apply')).toHaveCount(0);
    // The server refuses her own approval and her apply, even hand-made.
    const csrf = await olga.locator('input[name=_csrf]').first().getAttribute('value');
    const own = await olga.request.post(url, { form: { _csrf: csrf!, action: 'approve', purpose: 'apply', digest: 'x' }, maxRedirects: 0 });
    expect(own.status()).toBe(403);
    expect(await own.text()).toContain('was planned by you');
    const alone = await olga.request.post(url, { form: { _csrf: csrf!, action: 'apply' }, maxRedirects: 0 });
    expect(alone.status()).toBe(409);
    expect(await alone.text()).toContain("needs a second person's approval");

    // Oleg approves this plan; then Olga applies it.
    const oleg = await as(browser, info, e, OLEG);
    await oleg.goto(url);
    await oleg.getByTestId('approve-form').locator('input[name=comment]').fill('plan read');
    await oleg.getByTestId('approve-apply').click();
    await expect(oleg.getByTestId('flash')).toContainText('Approved: this plan may now be applied');
    await expect(oleg.getByTestId('apply-approval')).toHaveAttribute('data-approved', 'true');
    await olga.goto(url);
    await expect(olga.getByTestId('apply-approval')).toContainText(`Apply approved by ${OLEG.username}`);
    await olga.getByTestId('apply').click();
    await expect(olga.locator('h1 [data-status=succeeded]')).toBeVisible({ timeout: 45_000 });

    // The rollback: Oleg approves it and may not carry it out; Olga does.
    await oleg.goto(`${url}/rollback`);
    await expect(oleg.getByTestId('rollback-approval')).toHaveAttribute('data-approved', 'false');
    await expect(oleg.getByTestId('confirm-rollback')).toHaveCount(0);
    await oleg.getByTestId('approve-rollback').click();
    await expect(oleg).toHaveURL(/\/rollback$/);
    await expect(oleg.getByTestId('flash')).toContainText('Approved: another operator or admin may now roll this batch back');
    await expect(oleg.getByTestId('confirm-rollback')).toHaveCount(0);
    await olga.goto(`${url}/rollback`);
    await expect(olga.getByTestId('rollback-approval')).toHaveAttribute('data-approved', 'true');
    const n = url.split('/').pop()!;
    await olga.locator('input[name=confirm]').fill(n);
    await olga.getByTestId('confirm-rollback').click();
    await expect(olga.locator('h1 [data-status=rolled_back]')).toBeVisible({ timeout: 45_000 });

    // The audit log has the approvals and the refusals.
    await page.goto(`${e.url}/audit`);
    const audit = page.locator('body');
    await expect(audit).toContainText('batch.approve');
    await expect(audit).toContainText('host.protect');
    expect(errors).toEqual([]);
    await olga.context().close();
    await oleg.context().close();
  });
});
