import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REFRESH_INTERVAL_MS } from '../../src/admin/html.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DeployService, DockerRuntime } from '../../src/context.ts';
import { startEdge, type RunningEdge } from '../../src/edge.ts';
import {
  adminEdgeConfig,
  captureLogs,
  FakeDeploys,
  FakeDocker,
  prepareAdminEdgeDir,
  succeededDeploy,
  TEST_DEPLOY_SECRET,
  TEST_PASSWORD,
} from '../unit/admin-fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve('test-artifacts/admin.png');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Only the test's own names, mapped to loopback; everything else fails to resolve.
  '--host-resolver-rules=MAP app.example.test 127.0.0.1, MAP * ~NOTFOUND',
];

describe('admin page in Chromium', () => {
  let edge: RunningEdge;
  let upstream: http.Server;
  let workDir: string;
  let browser: Browser;
  let baseUrl: string;
  let deploys: FakeDeploys;
  let realDeploys: DeployService | undefined;
  let realDocker: DockerRuntime | undefined;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install the Debian chromium package`);

    workDir = await prepareAdminEdgeDir('admin-browser-');

    upstream = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const config = parseConfig({
      ...adminEdgeConfig({ workDir, upstreamPort, stagingPort: 9, probeIntervalMs: 50 }),
      services: {
        web: {
          container: 'web-prod',
          image: 'registry.example.test/web',
          port: 8000,
          environment: 'prod',
        },
      },
      // No Docker daemon listens here: the runtime is replaced by a fake below.
      docker: { socket: path.join(workDir, 'no-docker.sock') },
    });
    edge = await startEdge(config, captureLogs().logger);

    // The deploy history needs real deploys through Docker; the page is tested with fakes
    // behind the same DeployService and DockerRuntime interfaces.
    realDeploys = edge.context.deploys;
    realDocker = edge.context.docker;
    deploys = new FakeDeploys([
      succeededDeploy(),
      succeededDeploy({
        id: 'd-2',
        image: 'registry.example.test/web:v43',
        state: 'failed',
        failedStep: 'health',
        error: 'container did not become healthy within 60 s',
        startedAt: new Date(Date.now() - 20_000).toISOString(),
      }),
    ]);
    deploys.previous.set(
      'web',
      'sha256:4141414141414141414141414141414141414141414141414141414141414141',
    );
    edge.context.deploys = deploys;
    edge.context.docker = new FakeDocker([
      {
        service: 'web',
        container: 'web-prod',
        id: 'abc123',
        image: 'registry.example.test/web:v42',
        digest: 'sha256:4242424242424242424242424242424242424242424242424242424242424242',
        state: 'running',
        startedAt: new Date(Date.now() - 50_000).toISOString(),
        restartCount: 0,
      },
    ]);

    const port = (edge.servers.https.address() as AddressInfo).port;
    baseUrl = `https://app.example.test:${port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    await waitForProbes(edge);
  });

  after(async () => {
    await browser?.close();
    await edge?.stop();
    await realDeploys?.stop();
    await realDocker?.stop();
    await new Promise((resolve) => upstream.close(resolve));
    rmSync(workDir, { recursive: true, force: true });
  });

  async function loggedInPage(
    options: { javaScriptEnabled?: boolean } = {},
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, ...options });
    const page = await context.newPage();
    if (options.javaScriptEnabled !== false) await page.clock.install();

    await gotoRetryingNetworkChange(page, `${baseUrl}/_edge/`);
    assert.equal(new URL(page.url()).pathname, '/_edge/login', 'redirected to the login form');
    await page.fill('#password', TEST_PASSWORD);
    await Promise.all([page.waitForURL(`${baseUrl}/_edge/`), page.click('button[type=submit]')]);
    return { context, page };
  }

  it('shows health, certificates and deploys after login', async () => {
    const { context, page } = await loggedInPage();
    try {
      const apiRow = page.locator('#sites tr', { hasText: '/api/' });
      await assertText(apiRow.locator('.badge'), 'healthy');
      const stagingRow = page.locator('#sites tr', { hasText: '127.0.0.1:9' });
      await assertText(stagingRow.locator('.badge'), 'unhealthy');
      assert.match(await stagingRow.innerText(), /ECONNREFUSED/);

      const certificate = page.locator('#certificates tbody tr', { hasText: 'app.example.test' });
      const certificateText = await certificate.innerText();
      assert.match(certificateText, /self-signed/);
      assert.match(certificateText, /\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/, 'expiry date');
      assert.match(certificateText, /\d+(\.\d)? d/, 'days left');

      const recent = page.locator('#deploys tr', { hasText: 'registry.example.test/web:v42' });
      assert.match(await recent.innerText(), /succeeded/);
      const failed = page.locator('#deploys tr', { hasText: 'registry.example.test/web:v43' });
      assert.match(await failed.innerText(), /failed/);
      assert.match(await failed.innerText(), /health/);
      assert.match(await page.locator('#containers').innerText(), /web-prod/);

      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      assert.ok(statSync(SCREENSHOT).size > 10_000, 'screenshot written');
      assert.ok(!(await page.content()).includes(TEST_DEPLOY_SECRET));
    } finally {
      await context.close();
    }
  });

  it('refreshes the content in place when JavaScript is on', async () => {
    const { context, page } = await loggedInPage();
    try {
      await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same page'));
      deploys.records.push(
        succeededDeploy({
          id: 'd-new',
          image: 'registry.example.test/web:v44',
          startedAt: new Date().toISOString(),
        }),
      );
      assert.equal(await page.locator('text=registry.example.test/web:v44').count(), 0);

      await page.clock.runFor(REFRESH_INTERVAL_MS + 100);
      await page.locator('text=registry.example.test/web:v44').first().waitFor({ timeout: 5000 });
      const marker = await page.evaluate(() => (window as unknown as { marker?: string }).marker);
      assert.equal(marker, 'same page', 'updated without a reload');
    } finally {
      deploys.records = deploys.records.filter((record) => record.id !== 'd-new');
      await context.close();
    }
  });

  it('asks for confirmation before a rollback', async () => {
    const { context, page } = await loggedInPage();
    try {
      const questions: string[] = [];
      page.once('dialog', async (dialog) => {
        questions.push(dialog.message());
        await dialog.dismiss();
      });
      await page.click('#deploys button:has-text("Roll back")');
      assert.deepEqual(questions, ['Roll back web to 414141414141?']);
      assert.deepEqual(deploys.rolledBack, [], 'dismissed: nothing happens');

      page.once('dialog', (dialog) => void dialog.accept());
      await Promise.all([
        page.waitForURL(`${baseUrl}/_edge/`),
        page.click('#deploys button:has-text("Roll back")'),
      ]);
      await assertText(page.locator('.notice'), 'Rollback of web succeeded.');
      assert.deepEqual(deploys.rolledBack, ['web']);
    } finally {
      deploys.rolledBack.length = 0;
      await context.close();
    }
  });

  it('works without JavaScript, confirming on a second page', async () => {
    const { context, page } = await loggedInPage({ javaScriptEnabled: false });
    try {
      await assertText(
        page.locator('#sites tr', { hasText: '/api/' }).locator('.badge'),
        'healthy',
      );

      await page.click('#deploys button:has-text("Roll back")');
      assert.match(await page.locator('main').innerText(), /Roll back web to the previous image\?/);
      assert.deepEqual(deploys.rolledBack, []);

      await Promise.all([
        page.waitForURL(`${baseUrl}/_edge/`),
        page.click('button:has-text("Yes, go ahead")'),
      ]);
      assert.deepEqual(deploys.rolledBack, ['web']);
      await assertText(page.locator('.notice'), 'Rollback of web succeeded.');
    } finally {
      deploys.rolledBack.length = 0;
      await context.close();
    }
  });

  it('logs out', async () => {
    const { context, page } = await loggedInPage();
    try {
      await Promise.all([
        page.waitForURL(`${baseUrl}/_edge/login`),
        page.click('header button:has-text("Log out")'),
      ]);
      await gotoRetryingNetworkChange(page, `${baseUrl}/_edge/`);
      assert.equal(new URL(page.url()).pathname, '/_edge/login');
      const cookies = await context.cookies();
      assert.equal(cookies.filter((cookie) => cookie.name === '__Secure-edge_session').length, 0);
    } finally {
      await context.close();
    }
  });
});

async function assertText(locator: ReturnType<Page['locator']>, expected: string): Promise<void> {
  await locator.first().waitFor({ timeout: 5000 });
  assert.equal((await locator.first().innerText()).trim(), expected);
}

/** Waits until every upstream has a first probe result, so the page shows both states. */
async function waitForProbes(edge: RunningEdge): Promise<void> {
  const deadline = Date.now() + 5000;
  while (edge.context.health?.status().some((status) => status.healthy === undefined) !== false) {
    if (Date.now() > deadline) assert.fail('health probes did not finish');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Navigates to `url`, retrying when Chromium aborts with ERR_NETWORK_CHANGED: it raises that
 * whenever a network interface appears or goes on the machine, as Docker bridges of other test
 * runs do, and the request never reached the edge.
 */
async function gotoRetryingNetworkChange(page: Page, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (error) {
      const changed = error instanceof Error && error.message.includes('ERR_NETWORK_CHANGED');
      if (!changed || attempt >= 3) throw error;
    }
  }
}
