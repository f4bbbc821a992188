// The foundation flows, run twice: without JavaScript (forms post and the
// server renders the answer) and hydrated.
import { test, expect } from '@playwright/test';
import { env, signIn, watchErrors, ADMIN, VIEWER } from './env';

test.describe.serial('foundation', () => {
  test('first admin is created with the one-time setup token', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await page.goto(`${e.url}/`);
    await expect(page).toHaveURL(/\/setup$/);
    await page.fill('input[name=token]', 'not-the-token');
    await page.fill('input[name=username]', ADMIN.username);
    await page.fill('input[name=password]', ADMIN.password);
    await page.click('form button[type=submit]');
    await expect(page.getByTestId('flash')).toContainText('token');
    await expect(page.locator('input[name=username]')).toHaveValue(ADMIN.username);
    await page.fill('input[name=token]', e.token);
    await page.fill('input[name=password]', ADMIN.password);
    await page.click('form button[type=submit]');
    await expect(page).toHaveURL(`${e.url}/`);
    await expect(page.getByTestId('flash')).toContainText(`Welcome, ${ADMIN.username}`);
    await expect(page.getByTestId('who')).toContainText('admin');
    expect(errors).toEqual([]);
  });

  test('a wrong password is refused, the right one signs in', async ({ page }, info) => {
    const e = env(info);
    await page.goto(`${e.url}/login`);
    await page.fill('input[name=username]', ADMIN.username);
    await page.fill('input[name=password]', 'wrong password here');
    await page.click('form button[type=submit]');
    await expect(page.getByTestId('flash')).toHaveText('Wrong username or password.');
    await expect(page.locator('input[name=password]')).toHaveValue('');
    await signIn(page, e, ADMIN);
  });

  test('add a host: it is probed and its capability matrix is shown', async ({ page }, info) => {
    const e = env(info);
    const errors = watchErrors(page);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/hosts`);
    await expect(page.getByText('No host registered yet.')).toBeVisible();
    await page.click('text=Add a host');
    // Bad input first: a clear message on the field, and nothing written.
    await page.fill('input[name=name]', 'prod-cn');
    await page.fill('input[name=base_url]', 'gateway.example.com');
    await page.fill('input[name=admin_api_key]', e.host.key);
    await page.click('form[data-testid=host-form] button[type=submit]');
    await expect(page.getByTestId('error-base_url')).toContainText('must start with http');
    await expect(page.locator('input[name=name]')).toHaveValue('prod-cn');
    await expect(page.locator('input[name=admin_api_key]')).toHaveValue('');
    await page.fill('input[name=base_url]', e.host.url);
    await page.fill('input[name=admin_api_key]', 'admin-' + 'f'.repeat(64));
    await page.click('form[data-testid=host-form] button[type=submit]');
    await expect(page.getByTestId('error-admin_api_key')).toContainText('INVALID_ADMIN_KEY');
    // Now right.
    await page.fill('input[name=admin_api_key]', e.host.key);
    await page.fill('input[name=probe_user_email]', 'probe@example.com');
    await page.fill('input[name=probe_user_password]', 'probe-password-1');
    await page.click('form[data-testid=host-form] button[type=submit]');
    await expect(page).toHaveURL(/\/hosts\/\d+$/);
    await expect(page.getByTestId('flash')).toContainText('Host prod-cn added. Probe finished');
    const caps = page.getByTestId('capabilities');
    await expect(caps.locator('tr[data-capability=channels] [data-support]')).toHaveAttribute('data-support', 'yes');
    await expect(caps.locator('tr[data-capability=cn_platforms] [data-support]')).toHaveAttribute('data-support', 'yes');
    await expect(caps.locator('tr[data-capability=minimax_platform] [data-support]')).toHaveAttribute('data-support', 'no');
    await expect(page.getByTestId('version')).toHaveText('0.1.179');
    // The key is shown masked only.
    await expect(page.locator('body')).not.toContainText(e.host.key);
    expect(errors).toEqual([]);
  });

  test('probe again: history grows', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/hosts`);
    await page.click('text=prod-cn');
    await page.getByTestId('probe').click();
    await expect(page.getByTestId('flash')).toContainText('Probe finished');
    await expect(page.getByTestId('history').locator('tbody tr')).toHaveCount(2);
  });

  test('a fresh host: the 423 gate is explained, the phrase typed in the product, the probe then ready', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/hosts/new`);
    await page.fill('input[name=name]', 'gated');
    await page.fill('input[name=base_url]', e.gated.url);
    // The form shows the chosen credential's fields only, with or without JavaScript.
    await expect(page.locator('input[name=admin_api_key]')).toBeVisible();
    await expect(page.locator('input[name=admin_email]')).toBeHidden();
    // A fresh host has no admin key before the first acceptance.
    await page.selectOption('select[name=auth_kind]', 'password');
    await expect(page.locator('input[name=admin_api_key]')).toBeHidden();
    await page.fill('input[name=admin_email]', e.gated.email);
    await page.fill('input[name=admin_password]', e.gated.password);
    await page.fill('input[name=probe_user_email]', 'probe@example.com');
    await page.fill('input[name=probe_user_password]', 'probe-password-1');
    await page.click('form[data-testid=host-form] button[type=submit]');
    await expect(page.getByTestId('flash')).toContainText('Probe found a blocker');
    const finding = page.locator('li[data-code=compliance_required]');
    await expect(finding).toContainText('HTTP 423');
    await expect(page.getByTestId('compliance')).toContainText('acceptance required');
    const box = page.getByTestId('compliance-box');
    await expect(box.getByTestId('compliance-doc')).toHaveAttribute('href', /compliance\.en/);
    const phrase = (await box.getByTestId('compliance-phrase').textContent())!.trim();
    expect(phrase).toContain('Compliance Commitment');
    // A wrong phrase is refused with the field named.
    await box.getByTestId('compliance-input').fill('I agree');
    await box.getByTestId('compliance-accept').click();
    await expect(page.getByTestId('flash')).toContainText('does not match the host');
    await page.getByTestId('compliance-input').fill(phrase);
    await page.getByTestId('compliance-accept').click();
    await expect(page.getByTestId('flash')).toContainText('Compliance text accepted');
    await expect(page.getByTestId('compliance')).toContainText('accepted');
    await expect(page.getByTestId('compliance-box')).toHaveCount(0);
    await expect(page.getByTestId('probe-result').locator('h2 [data-status]')).toHaveAttribute('data-status', 'ok');
    // The admin key, on request, shown once.
    await page.getByTestId('admin-key-confirm').check();
    await page.getByTestId('admin-key-obtain').click();
    await expect(page.getByTestId('shown-once')).toContainText(/^admin-[0-9a-f]{64}$/);
    await page.goto(page.url());
    await expect(page.getByTestId('shown-once')).toHaveCount(0);
    await expect(page.locator('dl.facts').first()).toContainText('(admin API key)');
  });

  test('a viewer can read but is refused an admin action', async ({ page, browser }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/operators`);
    const form = page.getByTestId('operator-form');
    await form.locator('input[name=username]').fill(VIEWER.username);
    await form.locator('input[name=password]').fill(VIEWER.password);
    await form.locator('select[name=role]').selectOption('viewer');
    await form.locator('button[type=submit]').click();
    await expect(page.getByTestId('flash')).toContainText(`Operator ${VIEWER.username} added as viewer`);

    const ctx = await browser.newContext({ javaScriptEnabled: info.project.name === 'hydrated' });
    const viewer = await ctx.newPage();
    await signIn(viewer, e, VIEWER);
    await viewer.goto(`${e.url}/hosts`);
    await viewer.click('text=prod-cn');
    await expect(viewer.getByTestId('capabilities')).toBeVisible();
    await expect(viewer.getByTestId('probe')).toHaveCount(0);
    await viewer.goto(`${e.url}/operators`);
    await expect(viewer.getByTestId('error')).toContainText('This needs the admin role');
    // The server refuses even a hand-made request with a valid form token.
    await viewer.goto(`${e.url}/hosts`);
    const csrf = await viewer.locator('input[name=_csrf]').first().getAttribute('value');
    const resp = await viewer.request.post(`${e.url}/operators`, {
      form: { _csrf: csrf!, action: 'create', username: 'mallory', password: 'x'.repeat(20), role: 'admin' },
      maxRedirects: 0,
    });
    expect(resp.status()).toBe(403);
    expect(await resp.text()).toContain('Your role (viewer) cannot do this');
    await ctx.close();
  });

  test('the audit log shows who did what', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/audit`);
    const audit = page.getByTestId('audit');
    await expect(audit.locator('tr', { hasText: 'host.create' }).first()).toContainText(ADMIN.username);
    const created = audit.locator('tr').filter({ hasText: 'operator.create' }).filter({ hasText: 'operator:' + VIEWER.username });
    await expect(created).toHaveCount(1);
    await expect(created).toContainText(ADMIN.username);
    await expect(audit.locator('tr', { hasText: 'denied' }).first()).toContainText(VIEWER.username);
  });

  test('the language switch shows the pages in Chinese', async ({ page }, info) => {
    const e = env(info);
    await signIn(page, e, ADMIN);
    await page.goto(`${e.url}/hosts`);
    await page.click('a.lang');
    await expect(page.locator('h1')).toHaveText('主机');
    await page.click('a.lang');
    await expect(page.locator('h1')).toHaveText('Hosts');
  });
});
