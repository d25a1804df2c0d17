// Debian's Chromium, driven with playwright-core (both installed by scripts/setup.sh),
// for the web console's tests and benchmark. CONTINUUM_CHROMIUM names another binary.
import { type Browser, chromium, type Page } from 'playwright-core';

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CONTINUUM_CHROMIUM ?? '/usr/bin/chromium',
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}

/** A page that fails the test on a script error and on any request that leaves the control plane. */
export async function consolePage(
  browser: Browser,
  origin: string,
): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(origin) && !url.startsWith('data:'))
      problems.push(`request outside the control plane: ${url}`);
  });
  return { page, problems };
}

/** Signs in through the form (the way a person does). */
export async function signIn(page: Page, origin: string, token: string): Promise<void> {
  await page.goto(`${origin}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
