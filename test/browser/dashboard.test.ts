/**
 * The dashboard in real headless Chromium, against a real service (its own database, the
 * simulated worker, the sandbox provider, the test clock): what a user and an admin see and do.
 * Screenshots of the main screens go to docs/screenshots/.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Locator, Page, WebSocketRoute } from 'playwright-core';
import { Role } from '../../src/common/auth/role.enum';
import { webDir } from '../../src/http/web';
import { ADMIN, adjustCredits, balanceOf, openAccount } from '../helpers/accounts';
import { launchBrowser, screenshotPath, type Browser } from '../helpers/browser';
import { useTestApp } from '../helpers/test-app';

const t = useTestApp({ SIMULATED_WORKER: '1', TEST_CLOCK: '1' });
let browser: Browser;
const origin = () => new URL(t.app.url).origin;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

/** A tab signed in as `sub` through a `#token=` link. */
async function signedIn(sub: string, role: Role = Role.USER, opts?: { width?: number }): Promise<Page> {
  const page = await browser.page(opts);
  await page.goto(`${origin()}/#token=${await t.app.token(sub, role)}`);
  await page.getByTestId('balance').waitFor();
  return page;
}

const balanceShown = async (page: Page) => Number(await page.getByTestId('balance').textContent());
const until = async (f: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
};

type WorkspaceSeen = { id: string; name: string; myRole: string; balance: { id: string; available: number } };
type MemberSeen = { accountId: string; role: string; monthlyLimit: number | null; spentThisMonth: number };
/** `sub`'s workspaces as the API lists them. */
const workspacesOf = async (sub: string): Promise<WorkspaceSeen[]> =>
  (await t.app.raw<{ me: { workspaces: WorkspaceSeen[] } }>('{ me { workspaces { id name myRole balance { id available } } } }', undefined, { sub })).data!.me.workspaces;
/** The members of workspace `id` as `sub` (a member) reads them, newest first. */
const membersOf = async (sub: string, id: string): Promise<MemberSeen[]> =>
  (await t.app.raw<{ workspace: { members: { edges: { node: MemberSeen }[] } } }>(
    'query($id: ID!) { workspace(id: $id) { members(first: 100) { edges { node { accountId role monthlyLimit spentThisMonth } } } } }', { id }, { sub })).data!.workspace.members.edges.map((e) => e.node);
/** Each table row's cells, as text. */
const rowsOf = (rows: Locator) => rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));

describe('the dashboard', () => {
  it('signs in from a #token= link, takes the token out of the address bar, and shows the balance', async () => {
    const available = await openAccount(t.app, 'alice', { balance: 29 });
    const page = await signedIn('alice');
    expect(page.url()).toBe(`${origin()}/`);
    expect(await balanceShown(page)).toBe(available);
    // The token is kept for this tab only: a reload stays signed in.
    await page.reload();
    await page.getByTestId('balance').waitFor();
    expect(await balanceShown(page)).toBe(29);
    await page.screenshot({ path: screenshotPath('dashboard'), fullPage: true });
    await page.close();
  });

  it('shows when the next credits expire and how far the balance goes', async () => {
    await openAccount(t.app, 'runway-user', { tier: 'CREATOR' });
    const me = await t.app.raw<{ me: { balance: { available: number; nextExpiry: { credits: number; expiresAt: string } } } }>(
      '{ me { balance { available nextExpiry { credits expiresAt } } } }', undefined, { sub: 'runway-user' });
    const { available, nextExpiry } = me.data!.me.balance;
    const page = await signedIn('runway-user');
    const expiry = new Date(nextExpiry.expiresAt).toLocaleDateString('en', { dateStyle: 'medium' });
    expect(await page.getByTestId('next-expiry').textContent()).toBe(`${nextExpiry.credits} credits expire ${expiry}`);
    // Nothing spent yet: the images it pays for (1 credit each), no days-left estimate.
    expect(await page.getByTestId('runway').textContent()).toBe(`Enough for ${available.toLocaleString('en')} standard images`);
    await page.close();
  });

  it('signs in with a token pasted into the sign-in field, and refuses text that is not a token', async () => {
    await openAccount(t.app, 'paster', { balance: 7 });
    const page = await browser.page();
    await page.goto(`${origin()}/`);
    await page.getByLabel('Access token').fill('not a token');
    await page.getByTestId('sign-in').click();
    expect(await page.getByRole('alert').textContent()).toBe('That does not look like an access token (a JWT with a subject).');
    await page.getByLabel('Access token').fill(await t.app.token('paster'));
    await page.getByTestId('sign-in').click();
    await page.getByTestId('balance').waitFor();
    expect(await balanceShown(page)).toBe(7);
    await page.close();
  });

  it('shows a balance changed elsewhere (an admin adjustment) without a reload', async () => {
    await openAccount(t.app, 'bob', { balance: 29 });
    const page = await signedIn('bob');
    await until(async () => (await balanceShown(page)) === 29);
    await adjustCredits(t.app, 'bob', -29);
    await until(async () => (await balanceShown(page)) === 0);
    await page.getByTestId('low-credit-banner').waitFor();
    await page.close();
  });

  it('updates the quoted credits as the settings change, as the quote query prices them, and says what the tier lacks', async () => {
    await openAccount(t.app, 'carol', { balance: 100 });
    const quoteOf = async (settings: string) =>
      (await t.app.raw<{ quote: { credits: number } }>(`{ quote(settings: ${settings}) { credits } }`, undefined, { sub: 'carol' })).data!.quote.credits;
    const page = await signedIn('carol');
    const shown = () => page.getByTestId('quote-credits').textContent().then(Number);
    const standard = await quoteOf('{ type: IMAGE, imageQuality: STANDARD, count: 1 }');
    await until(async () => (await shown()) === standard);
    await page.getByTestId('image-count').fill('3');
    const three = await quoteOf('{ type: IMAGE, imageQuality: STANDARD, count: 3 }');
    expect(three).not.toBe(standard);
    await until(async () => (await shown()) === three);
    await page.getByTestId('image-quality').selectOption('ULTRA');
    const ultra = await quoteOf('{ type: IMAGE, imageQuality: ULTRA, count: 3 }');
    await until(async () => (await shown()) === ultra);
    expect(await page.getByTestId('missing-features').textContent()).toMatch(/^Your Free plan lacks Ultra images; the \w+ plan includes it\.$/);
    expect(await page.getByTestId('start-generation').isDisabled()).toBe(true);
    await page.close();
  });

  it('runs a job to the end through the simulated worker: a live card from start to SUCCEEDED with its results', async () => {
    await openAccount(t.app, 'dave', { balance: 100 });
    const page = await signedIn('dave');
    await page.getByLabel('Prompt').fill('a lighthouse at dawn');
    await until(async () => (await page.getByTestId('quote-credits').count()) > 0);
    const price = Number(await page.getByTestId('quote-credits').textContent());
    await page.getByTestId('start-generation').click();
    const card = page.getByTestId('job-card').first();
    await card.waitFor();
    await until(async () => (await card.getAttribute('data-status')) === 'SUCCEEDED', 20_000);
    expect(await card.getByRole('link').count()).toBeGreaterThan(0);
    // Its notification arrives live (notificationAdded), unread.
    const note = page.getByTestId('notification').filter({ hasText: 'Your image generation is ready: 1 result.' });
    await note.waitFor();
    expect(await note.getAttribute('class')).toBe('unread');
    expect(await balanceShown(page)).toBe(100 - price);
    expect(await balanceOf(t.app, 'dave')).toBe(100 - price);
    await page.screenshot({ path: screenshotPath('generation'), fullPage: true });
    await page.close();
  });

  it('blocks a start at zero credits, offers the packs that cover it, and starts once one is bought', async () => {
    await openAccount(t.app, 'erin', { balance: 0 });
    const page = await signedIn('erin');
    await page.getByLabel('Prompt').fill('a cat');
    await until(async () => (await page.getByTestId('quote-credits').count()) > 0);
    await page.getByTestId('start-generation').click();
    const refused = page.getByTestId('start-refused');
    await refused.waitFor();
    expect(await refused.textContent()).toMatch(/^You do not have enough credits for this\./);
    const offered = refused.locator('[data-testid^="buy-pack-"]');
    expect(await offered.count()).toBeGreaterThan(0);
    const code = (await offered.first().getAttribute('data-testid'))!.slice('buy-pack-'.length);
    const pack = (await t.app.raw<{ creditPacks: { code: string; credits: number }[] }>('{ creditPacks { code credits } }')).data!.creditPacks.find((p) => p.code === code)!;
    await page.screenshot({ path: screenshotPath('top-up'), fullPage: true });
    await offered.first().click();
    await until(async () => (await balanceShown(page)) === pack.credits);
    await page.getByTestId('start-generation').click();
    await page.getByTestId('job-card').first().waitFor();
    expect(await page.getByTestId('job-card').count()).toBe(1);
    await page.close();
  });

  it('refunds a pack within 24 hours where it is refundable, and offers no refund once a credit was used', async () => {
    await openAccount(t.app, 'frank', { balance: 0 });
    const page = await signedIn('frank');
    await page.getByTestId('buy-pack-STARTER').first().click();
    const purchase = page.getByTestId('purchase').first();
    await until(async () => (await purchase.getByTestId('request-refund').count()) === 1);
    await purchase.getByTestId('request-refund').click();
    await until(async () => (await purchase.getAttribute('data-status')) === 'REFUNDED');
    expect(await purchase.getByTestId('request-refund').count()).toBe(0);
    expect(await balanceOf(t.app, 'frank')).toBe(0);
    // Bought again and a credit used: no refund offered.
    await page.getByTestId('buy-pack-STARTER').first().click();
    await until(async () => (await balanceShown(page)) > 0);
    await page.getByLabel('Prompt').fill('used');
    await until(async () => (await page.getByTestId('quote-credits').count()) > 0);
    await page.getByTestId('start-generation').click();
    await page.getByTestId('job-card').first().waitFor();
    await page.reload();
    await page.getByTestId('purchase').first().waitFor();
    expect(await page.getByTestId('purchase').first().getByTestId('request-refund').count()).toBe(0);
    await page.close();
  });

  it('sets auto top-up from its panel, shows it on with the saved values, refuses a monthly cap over 31, and turns it off', async () => {
    await openAccount(t.app, 'kai', { balance: 500 });
    const packs = (await t.app.raw<{ creditPacks: { code: string; name: string }[] }>('{ creditPacks { code name } }')).data!.creditPacks;
    expect(packs.length).toBeGreaterThan(1);
    const pack = packs[1]; // not the one the form starts with
    const saved = async () =>
      (await t.app.raw<{ me: { autoTopUp: Record<string, unknown> | null } }>(
        '{ me { autoTopUp { enabled packCode belowCredits maxPerMonth purchasesThisMonth failedAttempts lastPurchaseAt } } }', undefined, { sub: 'kai' })).data!.me.autoTopUp;
    expect(await saved()).toBeNull();

    const page = await signedIn('kai');
    const panel = page.getByTestId('auto-top-up');
    const state = panel.getByTestId('auto-top-up-state');
    expect(await state.textContent()).toBe('Off: nothing is bought by itself.');
    expect(await panel.getByTestId('auto-top-up-badge').textContent()).toBe('Off');
    expect(await panel.getByTestId('disable-auto-top-up').count()).toBe(0);

    await panel.getByLabel('Pack to buy').selectOption(pack.code);
    await panel.getByLabel('When the balance falls below (credits)').fill('40');
    await panel.getByLabel('At most this many a month (1 to 31)').fill('3');
    await panel.getByTestId('save-auto-top-up').click();
    await panel.getByText('Saved: auto top-up is on.').waitFor();
    const on = `On: buys ${pack.name} when below 40 credits, at most 3 a month; 0 this month.`;
    expect(await state.textContent()).toBe(on);
    expect(await panel.getByTestId('auto-top-up-badge').textContent()).toBe('On');
    expect(await panel.getAttribute('data-enabled')).toBe('true');
    expect(await panel.getByTestId('auto-top-up-failures').count()).toBe(0);
    expect(await panel.getByTestId('auto-top-up-last').count()).toBe(0);
    const enabled = { enabled: true, packCode: pack.code, belowCredits: 40, maxPerMonth: 3, purchasesThisMonth: 0, failedAttempts: 0, lastPurchaseAt: null };
    expect(await saved()).toEqual(enabled);
    expect(await balanceOf(t.app, 'kai')).toBe(500); // above the level: nothing bought

    // A cap the API refuses (BAD_USER_INPUT) is shown as its message, and changes nothing.
    await panel.getByLabel('At most this many a month (1 to 31)').fill('40');
    await panel.getByTestId('save-auto-top-up').click();
    const refused = panel.getByTestId('auto-top-up-error');
    await refused.waitFor();
    expect(await refused.textContent()).toBe('input.maxPerMonth must not be greater than 31');
    expect(await refused.getAttribute('role')).toBe('alert');
    expect(await state.textContent()).toBe(on);
    expect(await saved()).toEqual(enabled);

    // What the panel shows is the API's, not the form's: the same after a reload.
    await page.reload();
    await page.getByTestId('balance').waitFor();
    await until(async () => (await state.textContent()) === on);
    expect(await panel.getByLabel('Pack to buy').inputValue()).toBe(pack.code);
    expect(await panel.getByLabel('When the balance falls below (credits)').inputValue()).toBe('40');
    expect(await panel.getByLabel('At most this many a month (1 to 31)').inputValue()).toBe('3');

    await panel.getByTestId('disable-auto-top-up').click();
    await panel.getByText('Auto top-up is off; your settings are kept.').waitFor();
    expect(await state.textContent()).toBe('Off: nothing is bought by itself.');
    expect(await panel.getByTestId('auto-top-up-badge').textContent()).toBe('Off');
    expect(await panel.getAttribute('data-enabled')).toBe('false');
    expect(await panel.getByTestId('disable-auto-top-up').count()).toBe(0);
    expect(await saved()).toEqual({ ...enabled, enabled: false });
    await page.close();
  });

  it('shows an automatic purchase live: this month\'s count and last purchase in the panel, an "auto" badge in the purchases', async () => {
    await openAccount(t.app, 'lena', { balance: 100 });
    const pack = (await t.app.raw<{ creditPacks: { code: string; name: string; credits: number }[] }>('{ creditPacks { code name credits } }')).data!.creditPacks[0];
    const page = await signedIn('lena');
    const panel = page.getByTestId('auto-top-up');
    await panel.getByLabel('Pack to buy').selectOption(pack.code);
    await panel.getByLabel('When the balance falls below (credits)').fill('50');
    await panel.getByLabel('At most this many a month (1 to 31)').fill('2');
    await panel.getByTestId('save-auto-top-up').click();
    const state = panel.getByTestId('auto-top-up-state');
    await until(async () => (await state.textContent()) === `On: buys ${pack.name} when below 50 credits, at most 2 a month; 0 this month.`);
    expect(await page.getByTestId('auto-badge').count()).toBe(0);

    await adjustCredits(t.app, 'lena', -70); // 30 left, below 50: one pack is bought by itself
    await until(async () => (await balanceShown(page)) === 30 + pack.credits, 15_000);
    await until(async () => (await state.textContent()) === `On: buys ${pack.name} when below 50 credits, at most 2 a month; 1 this month.`, 15_000);
    const me = (await t.app.raw<{ me: { autoTopUp: { purchasesThisMonth: number; lastPurchaseAt: string | null }; purchases: { edges: { node: { packCode: string | null; automatic: boolean; status: string } }[] } } }>(
      '{ me { autoTopUp { purchasesThisMonth lastPurchaseAt } purchases(first: 5) { edges { node { packCode automatic status } } } } }', undefined, { sub: 'lena' })).data!.me;
    expect(me.autoTopUp.purchasesThisMonth).toBe(1);
    expect(me.purchases.edges.map((e) => e.node)).toEqual([{ packCode: pack.code, automatic: true, status: 'COMPLETED' }]);
    const last = new Date(me.autoTopUp.lastPurchaseAt!).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
    expect(await panel.getByTestId('auto-top-up-last').textContent()).toBe(`Last automatic purchase: ${last}`);
    const row = page.getByTestId('purchase').first();
    await until(async () => (await row.getByTestId('auto-badge').count()) === 1);
    expect(await row.getByTestId('auto-badge').textContent()).toBe('auto');
    await until(async () => (await page.locator('[data-testid="notification"][data-kind="AUTO_TOP_UP_COMPLETED"]').count()) === 1);
    await page.close();
  });

  it('lets an admin look up an account, adjust its credits, and approve a refund under review', async () => {
    await openAccount(t.app, 'gina', { tier: 'PRO', interval: 'ANNUAL' });
    await t.app.raw('mutation { advanceTestClock(hours: 48) }', undefined, ADMIN);
    const plan = (await t.app.raw<{ me: { purchases: { edges: { node: { id: string } }[] } } }>('{ me { purchases(first: 1) { edges { node { id } } } } }', undefined, { sub: 'gina' })).data!.me.purchases.edges[0].node.id;
    const asked = (await t.app.raw<{ requestRefund: { refundRequest: { status: string } } }>(`mutation { requestRefund(input: { purchaseId: "${plan}" }) { refundRequest { status } } }`, undefined, { sub: 'gina' })).data!;
    expect(asked.requestRefund.refundRequest.status).toBe('PENDING_REVIEW');
    const before = await balanceOf(t.app, 'gina');

    const page = await signedIn(ADMIN.sub, Role.ADMIN);
    await page.getByTestId('account-lookup').fill('gina');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByTestId('adjust-amount').fill('5');
    await page.getByTestId('adjust-reason').fill('goodwill');
    await page.getByTestId('adjust-credits').click();
    await page.getByText(`Done: the balance is ${(before + 5).toLocaleString('en')} credits.`).waitFor();
    expect(await balanceOf(t.app, 'gina')).toBe(before + 5);
    const review = page.getByTestId('refund-review');
    await review.getByTestId('review-item').first().waitFor();
    await page.screenshot({ path: screenshotPath('admin'), fullPage: true });
    await review.getByTestId('approve-refund').first().click();
    await review.getByText('Approved.').waitFor();
    const decided = await t.app.one<{ status: string }>(`SELECT status FROM refund_requests WHERE purchase_id = $1`, [plan]);
    expect(decided.status).toBe('APPROVED');
    await page.close();
  });

  it('creates a workspace, adds a member with a monthly limit, and shows the member list', async () => {
    await openAccount(t.app, 'wren', { balance: 25 });
    const page = await signedIn('wren');
    const card = page.getByTestId('workspaces');
    expect(await card.getByTestId('workspaces-empty').textContent()).toBe('You are not in any workspace yet.');
    expect(await card.getByTestId('workspace-row').count()).toBe(0);

    // A blank name is refused before any request.
    await card.getByTestId('create-workspace').click();
    const nameRefused = card.getByTestId('create-workspace-message-error');
    expect(await nameRefused.textContent()).toBe('Enter a name for the workspace.');
    expect(await nameRefused.getAttribute('role')).toBe('alert');
    expect(await workspacesOf('wren')).toEqual([]);

    await card.getByLabel('Workspace name').fill('Studio North');
    await card.getByTestId('create-workspace').click();
    expect(await card.getByTestId('create-workspace-message').textContent()).toBe('Created Studio North: you are its owner.');
    const [created] = await workspacesOf('wren');
    expect(created).toEqual({ id: expect.stringMatching(/^workspace:[0-9a-f-]{36}$/), name: 'Studio North', myRole: 'OWNER', balance: { id: expect.any(String), available: 0 } });
    expect(created.balance.id).toBe(created.id);
    await until(async () => (await card.getByTestId('workspace-row').count()) === 1);
    expect(await rowsOf(card.getByTestId('workspace-row'))).toEqual([['Studio North', 'Owner', '0 credits', 'Open']]);
    expect(await card.getByTestId('workspaces-empty').count()).toBe(0);

    // The new workspace is opened: its only member is its owner.
    const detail = card.getByTestId('workspace-detail');
    expect(await detail.getAttribute('data-workspace-id')).toBe(created.id);
    expect(await detail.getByTestId('workspace-title').textContent()).toBe('Studio North');
    expect(await detail.getByTestId('workspace-summary').textContent()).toBe('Owner · Free plan · pool 0 credits · 1 member');
    const members = detail.getByTestId('member-row');
    await members.first().waitFor();
    expect(await rowsOf(members)).toEqual([['wren', 'Owner', 'No limit', '0 credits']]);

    // A limit that is not a whole number is refused in the form: nothing is sent.
    const form = detail.getByTestId('add-member');
    await form.getByLabel('Account id').fill('otto');
    await form.getByLabel('Monthly limit in credits (empty: no limit)').fill('2.5');
    await form.getByTestId('save-member').click();
    expect(await form.getByTestId('member-message-error').textContent()).toBe('Enter the monthly limit as a whole number of credits (0 or more), or leave it empty for no limit.');
    expect(await membersOf('wren', created.id)).toEqual([{ accountId: 'wren', role: 'OWNER', monthlyLimit: null, spentThisMonth: 0 }]);

    await form.getByLabel('Monthly limit in credits (empty: no limit)').fill('300');
    expect(await form.getByLabel('Role').inputValue()).toBe('MEMBER');
    await form.getByTestId('save-member').click();
    await form.getByTestId('member-message').waitFor();
    expect(await form.getByTestId('member-message').textContent()).toBe('Saved: otto is a member, with a limit of 300 credits a month.');
    expect(await form.getByTestId('member-message-error').count()).toBe(0);
    expect(await form.getByLabel('Account id').inputValue()).toBe('');
    // Newest first, as the API lists them; the count follows.
    await until(async () => (await members.count()) === 2);
    expect(await rowsOf(members)).toEqual([
      ['otto', 'Member', '300 credits a month', '0 credits'],
      ['wren', 'Owner', 'No limit', '0 credits'],
    ]);
    expect(await detail.getByTestId('workspace-summary').textContent()).toBe('Owner · Free plan · pool 0 credits · 2 members');
    expect(await membersOf('wren', created.id)).toEqual([
      { accountId: 'otto', role: 'MEMBER', monthlyLimit: 300, spentThisMonth: 0 },
      { accountId: 'wren', role: 'OWNER', monthlyLimit: null, spentThisMonth: 0 },
    ]);
    expect(await workspacesOf('otto')).toEqual([{ ...created, myRole: 'MEMBER' }]);

    // An admin, with no limit.
    await form.getByLabel('Account id').fill('ada');
    await form.getByLabel('Role').selectOption('ADMIN');
    await form.getByTestId('save-member').click();
    await form.getByText('Saved: ada is an admin, with no monthly limit.').waitFor();
    await until(async () => (await members.count()) === 3);
    expect((await rowsOf(members))[0]).toEqual(['ada', 'Admin', 'No limit', '0 credits']);

    // The owner cannot step down to admin (INVALID_STATE, a user error): shown as an alert, nothing changed.
    await form.getByLabel('Account id').fill('wren');
    await form.getByLabel('Role').selectOption('ADMIN');
    await form.getByTestId('save-member').click();
    const refused = form.getByTestId('member-message-error');
    await refused.waitFor();
    expect(await refused.textContent()).toBe('That is not possible right now. (A workspace always has one OWNER: make another member OWNER to step down)');
    expect(await refused.getAttribute('role')).toBe('alert');
    expect((await membersOf('wren', created.id)).find((m) => m.accountId === 'wren')).toEqual({ accountId: 'wren', role: 'OWNER', monthlyLimit: null, spentThisMonth: 0 });

    // The pool's balance is its own (Balance.id is the workspace's): credits to it show live in the
    // card, and the header keeps the personal balance.
    await adjustCredits(t.app, created.id, 120, { reason: 'pool' });
    await until(async () => (await card.getByTestId('workspace-balance').textContent()) === '120 credits');
    expect(await detail.getByTestId('workspace-summary').textContent()).toBe('Owner · Free plan · pool 120 credits · 3 members');
    expect(await balanceShown(page)).toBe(25);
    await card.screenshot({ path: screenshotPath('workspaces'), style: '.top { position: static; }' }); // the sticky header would cover part of the card
    await page.close();
  });

  it('shows a member the pool and members without the add-member form, and an admin the FORBIDDEN refusal of changing the owner as an alert', async () => {
    await openAccount(t.app, 'nell', { balance: 10 });
    const made = await t.app.raw<{ createWorkspace: { workspace: { id: string } } }>('mutation { createWorkspace(input: { name: "Pool Room" }) { workspace { id } } }', undefined, { sub: 'nell' });
    const id = made.data!.createWorkspace.workspace.id;
    for (const [accountId, role, limit] of [['abe', 'ADMIN', 'null'], ['moe', 'MEMBER', '50']] as const) {
      const r = await t.app.raw<{ setWorkspaceMember: { userErrors: unknown[] } }>(
        `mutation { setWorkspaceMember(input: { workspaceId: "${id}", accountId: "${accountId}", role: ${role}, monthlyLimit: ${limit} }) { userErrors { code } } }`, undefined, { sub: 'nell' });
      expect(r.data!.setWorkspaceMember.userErrors).toEqual([]);
    }
    await adjustCredits(t.app, id, 40, { reason: 'pool' });
    const before = await membersOf('nell', id);

    const member = await signedIn('moe');
    const card = member.getByTestId('workspaces');
    await card.getByTestId('workspace-row').first().waitFor();
    expect(await rowsOf(card.getByTestId('workspace-row'))).toEqual([['Pool Room', 'Member', '40 credits', 'Open']]);
    await card.getByRole('button', { name: 'Open' }).click();
    const detail = card.getByTestId('workspace-detail');
    await detail.getByTestId('member-row').first().waitFor();
    expect(await rowsOf(detail.getByTestId('member-row'))).toEqual([
      ['moe', 'Member', '50 credits a month', '0 credits'],
      ['abe', 'Admin', 'No limit', '0 credits'],
      ['nell', 'Owner', 'No limit', '0 credits'],
    ]);
    expect(await detail.getByTestId('add-member').count()).toBe(0);
    expect(await detail.getByTestId('members-managers-only').textContent()).toBe('Only the owner or an admin of this workspace adds members or changes them.');
    await member.close();

    // An ADMIN manages members but not the OWNER: the API's FORBIDDEN (a GraphQL error) is shown as an alert.
    const admin = await signedIn('abe');
    const adminCard = admin.getByTestId('workspaces');
    await adminCard.getByRole('button', { name: 'Open' }).click();
    const form = adminCard.getByTestId('add-member');
    await form.getByLabel('Account id').fill('nell');
    await form.getByTestId('save-member').click();
    const refused = form.getByTestId('member-message-error');
    await refused.waitFor();
    expect(await refused.textContent()).toBe('Your role in this workspace does not allow this. (Only the OWNER changes the OWNER)');
    expect(await refused.getAttribute('role')).toBe('alert');
    expect(await membersOf('nell', id)).toEqual(before);
    await admin.close();
  });

  it('shows the current balance after a network drop and reconnect, though it changed while the tab was offline', async () => {
    await openAccount(t.app, 'hana', { balance: 12 });
    let open = true;
    const sockets: WebSocketRoute[] = [];
    const page = await browser.page();
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      if (!open) return void ws.close({ code: 3000, reason: 'offline' });
      ws.connectToServer();
      sockets.push(ws);
    });
    await page.goto(`${origin()}/#token=${await t.app.token('hana')}`);
    await until(async () => (await page.getByTestId('balance').count()) > 0 && (await balanceShown(page)) === 12);
    open = false;
    for (const s of sockets.splice(0)) await s.close({ code: 3000, reason: 'network drop' });
    await page.getByText('Reconnecting…').waitFor();
    await adjustCredits(t.app, 'hana', -10); // the server is at 2 while the tab is offline
    expect(await balanceShown(page)).toBe(12);
    open = true;
    await until(async () => (await balanceShown(page)) === 2, 15_000);
    await page.close();
  });

  it('fits a phone-width screen without sideways scrolling', async () => {
    await openAccount(t.app, 'ivy', { balance: 40 });
    const page = await signedIn('ivy', Role.USER, { width: 390 });
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBe(0);
    await page.screenshot({ path: screenshotPath('phone'), fullPage: false });
    await page.close();
  });

  it('labels every form control', async () => {
    await openAccount(t.app, 'jo', { balance: 40 });
    const page = await signedIn('jo', Role.ADMIN);
    const unlabelled = await page.evaluate(`[...document.querySelectorAll('input, select, textarea')]
      .filter((el) => !el.labels?.length && !el.getAttribute('aria-label'))
      .map((el) => el.outerHTML.slice(0, 80))`);
    expect(unlabelled).toEqual([]);
    await page.close();
  });

  it('serves a local GraphiQL at /graphiql that loads nothing from another host', async () => {
    const page = await browser.page();
    const hosts = new Set<string>();
    page.on('request', (r) => hosts.add(new URL(r.url()).host));
    await page.goto(`${origin()}/graphql`);
    expect(page.url()).toBe(`${origin()}/graphiql`);
    await page.locator('.graphiql-container').waitFor();
    expect([...hosts]).toEqual([new URL(origin()).host]);
    await page.close();
  });

  it('keeps the first screen small: under 200 KiB of gzipped script and style', () => {
    const dir = webDir()!;
    const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
    const assets = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(1);
    const bytes = assets.reduce((n, a) => n + gzipSync(readFileSync(path.join(dir, a))).length, 0);
    process.stdout.write(`[dashboard] first screen: ${assets.length} files, ${(bytes / 1024).toFixed(1)} KiB gzip\n`);
    expect(bytes).toBeLessThan(200 * 1024);
  });
});
