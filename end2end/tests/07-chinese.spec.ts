// A zh-CN operator's pages say nothing in English: the overview, a host,
// a pack and a pack's problems, a batch planned, applying, done and
// diagnosed, and a rollback preview. Data stays as
// it is (host, pack and model names, masked keys, codes, the host's own
// words in evidence blocks); what the product writes is Chinese.
import { test, expect } from '@playwright/test';
import { env, signIn, watchErrors, noEnglish, ADMIN } from './env';

test.describe.serial('zh-CN', () => {
  test('overview, host, pack and batch pages carry no English message', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/lang?to=zh`);
    await page.goto(`${e.url}/`);
    await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
    await noEnglish(page, 'overview');

    await page.goto(`${e.url}/hosts`);
    await page.locator('a', { hasText: 'prod-cn' }).first().click();
    await expect(page).toHaveURL(/\/hosts\/\d+$/);
    await noEnglish(page, 'host');

    await page.goto(`${e.url}/packs`);
    await page.locator('main a[href^="/packs/"]', { hasText: 'E2E DeepSeek' }).first().click();
    await expect(page).toHaveURL(/\/packs\/\d+/);
    await noEnglish(page, 'pack');

    // A pack with problems: every one located and said in Chinese.
    await page.goto(`${e.url}/packs`);
    await page.locator('textarea[name=source]').fill('schema: 2\nid: Bad Id\nname: ""\nproviders: {}\n');
    await page.getByTestId('pack-form').locator('button[type=submit]').click();
    await expect(page.getByTestId('issues')).toContainText('第 2 行，id：`Bad Id` 不是有效的模板包 id');
    await noEnglish(page, 'pack with problems');

    // A plan of keys earlier specs imported: every key is skipped, with why.
    await page.goto(`${e.url}/batches/new`);
    const form = page.getByTestId('batch-form');
    const host = await form.locator('select[name=host_id] option', { hasText: 'prod-cn (' }).first().getAttribute('value');
    await form.locator('select[name=host_id]').selectOption(host!);
    const prov = await form.locator('select[name=provider] option', { hasText: 'e2e-pack/ds' }).first().getAttribute('value');
    await form.locator('select[name=provider]').selectOption(prov!);
    await form.locator('textarea[name=keys]').fill(e.host.keys.slice(0, 2).join('\n'));
    await form.locator('button[type=submit]').click();
    await expect(page.locator('h1 [data-status=planned]')).toBeVisible();
    await expect(page.getByTestId('skipped')).toContainText('已由批次');
    await noEnglish(page, 'planned batch');

    await page.getByTestId('apply').click();
    await noEnglish(page, 'applying batch');
    await expect(page.locator('h1 [data-status=succeeded]')).toBeVisible({ timeout: 45_000 });
    await noEnglish(page, 'done batch');
    await page.getByTestId('rollback').click();
    await expect(page.getByTestId('confirm-rollback')).toBeVisible();
    await noEnglish(page, 'rollback preview');

    // A batch an earlier spec diagnosed (its key had no balance).
    await page.goto(`${e.url}/batches?status=failed`);
    await page.locator('main table a[href^="/batches/"]').first().click();
    await expect(page.getByTestId('diagnosis')).toBeVisible();
    await noEnglish(page, 'diagnosed batch');
    expect(errors).toEqual([]);
  });
});
