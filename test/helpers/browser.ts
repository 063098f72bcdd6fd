/**
 * Real headless Chromium (Debian's /usr/bin/chromium, or CHROMIUM_PATH) driven by playwright-core,
 * with a fresh profile and no network beyond this machine. `.ci/run` installs the chromium
 * package when it is missing; without it these tests fail saying so (they are not skipped).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** A new tab (its own sessionStorage: signed out). */
  page(opts?: { width?: number; height?: number }): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  const profile = mkdtempSync(path.join(tmpdir(), 'credits-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...extraArgs],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async page(opts = {}) {
      const page = await context.newPage();
      if (opts.width) await page.setViewportSize({ width: opts.width, height: opts.height ?? 844 });
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Screenshots for docs/screenshots (made by the tests, committed). */
export function screenshotPath(name: string): string {
  return path.resolve(__dirname, '..', '..', 'docs', 'screenshots', `${name}.png`);
}
