// The dashboard in real headless Chromium (Debian's package, driven by
// Playwright). Started by `tests/e2e/dashboard.rs`, which prepares the server
// and the source files and passes everything in the environment; this script
// exits non-zero, with the step that failed and a screenshot, on the first
// broken expectation.
//
// It signs in, creates a connector and a pipeline through the forms, starts a
// run and watches it go pending → running → completed_with_errors without a
// reload, reads the rejected rows (markup in them stays text: no dialog, no
// console error), downloads the CSV and JSON exports and compares them with
// the API's, retries, manages API keys, and signs in as a viewer, who sees no
// controls and whose forged requests the server refuses.

import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through cargo xtask test`);
  return v;
};
const BASE = env('SLUICE_URL');
const ADMIN_KEY = env('SLUICE_ADMIN_KEY');
const SHOTS = env('SLUICE_SCREENSHOT_DIR');
const SECRET = env('SLUICE_CONNECTOR_SECRET');
const ROWS = Number(env('SLUICE_EXPECTED_ROWS'));
const { chromium } = createRequire(path.join(env('SLUICE_PLAYWRIGHT_DIR'), 'package.json'))('playwright-core');

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const PIPELINE_NAME = 'Customers <img src=x onerror=alert(3)>';

let step = 'start';
const log = (what) => {
  step = what;
  console.log(`dashboard: ${what}`);
};

/** The API, from Node, as a reference to compare the pages with. */
async function apiCall(method, p, { key = ADMIN_KEY, accept = 'application/json' } = {}) {
  const r = await fetch(`${BASE}/api/v1${p}`, { method, headers: { Authorization: `Bearer ${key}`, Accept: accept } });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

/** What a page must never do: open a dialog, throw, or log an error we did not expect. */
function watch(page, allowedFailures) {
  const problems = [];
  page.on('dialog', async (d) => {
    problems.push(`dialog ${d.type()}: ${d.message()}`);
    await d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    const allowed = m.text().startsWith('Failed to load resource')
      && allowedFailures.some((re) => re.test(url) && re.test(`${m.text()} ${url}`));
    if (!allowed) problems.push(`console error: ${m.text()} (${url})`);
  });
  return problems;
}

async function shot(page, name, viewport) {
  const before = page.viewportSize();
  await page.setViewportSize(viewport);
  // Let the layout settle at the new width.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
  await page.setViewportSize(before);
}

async function newContext(browser) {
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US', timezoneId: 'UTC', acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  return context;
}

async function signIn(page, key) {
  await page.goto(`${BASE}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Pipelines', level: 1 }).waitFor();
  assert.ok(!page.url().includes(key), 'the key must not be in the URL');
}

const statusOf = (page) => page.locator('[data-testid=run-status] [data-status]').getAttribute('data-status');

/** Polls `check` until it returns a truthy value or `ms` pass. */
async function until(what, check, ms = 60_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

function startWorker() {
  const child = spawn(env('SLUICE_BIN'), ['worker'], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: env('SLUICE_WORKER_DATABASE_URL'),
      // One partition at a time, in small batches: the run stays `running`
      // for several refreshes of the page.
      SLUICE_WORKERS: '1',
      SLUICE_BATCH_ROWS: '100',
      SLUICE_LEASE_SECONDS: '5',
      SLUICE_LOG: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function adminJourney(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  // Expected failures: the wrong key's 401, the form's deliberate 400, the
  // refused delete of a connector in use (409), and the probe of the file
  // ledger, which answers 404 until the server has one.
  const problems = watch(page, [/\/me$/, /\/pipelines$/, /\/files\?/, /\/connectors\/conn_/]);

  log('a wrong key is refused with a plain message');
  await page.goto(`${BASE}/`);
  await page.getByLabel('API key').fill('sk_not_a_real_key_for_this_test');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('This key is not valid').waitFor();

  log('sign in as admin');
  await signIn(page, ADMIN_KEY);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.key')), ADMIN_KEY);

  log('create a connector through the form');
  await page.getByRole('link', { name: 'Connectors' }).click();
  await page.getByRole('button', { name: 'New connector' }).click();
  await page.getByLabel('Name').fill('Test bucket');
  await page.getByLabel('Type').selectOption('s3');
  await page.getByLabel('Bucket').fill(env('SLUICE_BUCKET'));
  await page.getByLabel('Region').fill('us-east-1');
  await page.getByLabel('Endpoint').fill(env('SLUICE_S3_ENDPOINT'));
  await page.getByLabel('Path-style requests').check();
  await page.getByLabel('Access key id').fill('test');
  await page.getByLabel('Secret access key').fill(SECRET);
  await page.getByRole('button', { name: 'Create connector' }).click();
  const row = page.getByRole('row', { name: /Test bucket/ });
  await row.waitFor();
  assert.match(await row.innerText(), /accessKeyId, secretAccessKey/);
  assert.ok(!(await page.content()).includes(SECRET), 'a credential is shown back');
  await row.getByRole('button', { name: 'Test Test bucket' }).click();
  await row.locator('.test-result.ok').waitFor();

  log('a 400 from the API is shown next to the field it names');
  await page.getByRole('link', { name: 'Pipelines' }).click();
  await page.getByRole('link', { name: 'New pipeline', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill(PIPELINE_NAME);
  await page.getByLabel('Prefix').fill('in/');
  await page.getByLabel('Column 1 name').fill('id');
  await page.locator('#f-schema-columns-0-type').selectOption('integer');
  await page.locator('#f-schema-columns-0-required').check();
  for (const [i, name, type] of [[1, 'email', 'email'], [2, 'name', 'string'], [3, 'age', 'integer']]) {
    await page.getByRole('button', { name: 'Add column' }).click();
    await page.getByLabel(`Column ${i + 1} name`).fill(name);
    await page.locator(`#f-schema-columns-${i}-type`).selectOption(type);
  }
  await page.locator('#f-schema-columns-1-required').check();
  await page.getByLabel('Table').fill('Bad Table');
  await page.getByLabel('Key columns').fill('id');
  await page.getByLabel('Load strategy').selectOption('upsert');
  await page.getByLabel('Partitions').fill('4');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  const tableError = page.locator('#f-destination-table-error');
  await tableError.waitFor();
  assert.match(await tableError.innerText(), /\S/);
  assert.equal(await page.getByLabel('Table').getAttribute('aria-invalid'), 'true');

  log('create the pipeline');
  await page.getByLabel('Table').fill('customers');
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  await page.getByRole('heading', { name: PIPELINE_NAME, level: 1 }).waitFor();
  const pipelineId = page.url().split('/pipelines/')[1];
  assert.match(pipelineId, /^pipe_/);
  assert.equal(await page.locator('h1 img').count(), 0, 'the name is text, not markup');

  log('pause and resume');
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.locator('.page-title .pill-paused').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Start run' }).isDisabled(), true);
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.locator('.page-title .pill-active').waitFor();

  log('edit the pipeline through its form');
  await page.getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit pipeline' }).waitFor();
  assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), PIPELINE_NAME);
  assert.equal(await page.getByLabel('Column 4 name').inputValue(), 'age');
  assert.equal(await page.getByLabel('Schema drift').inputValue(), 'ignore');
  await page.getByLabel('Error threshold').fill('1000');
  // A column's header name (`source`) is kept through an edit.
  await page.locator('#f-schema-columns-1-source').fill('email');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('heading', { name: PIPELINE_NAME, level: 1 }).waitFor();
  await page.getByText('1,000 failed rows').waitFor();
  await page.getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit pipeline' }).waitFor();
  assert.equal(await page.locator('#f-schema-columns-1-source').inputValue(), 'email');
  await shot(page, 'pipeline-form-1280.png', DESKTOP);
  await page.getByRole('link', { name: 'Cancel' }).click();
  await page.getByRole('heading', { name: PIPELINE_NAME, level: 1 }).waitFor();

  log('dry run shows counts and first errors');
  await page.getByRole('button', { name: 'Dry run' }).click();
  const dry = page.getByRole('region', { name: 'Dry-run errors' });
  await dry.waitFor();
  assert.match(await dry.innerText(), /Invalid email format/);
  await page.getByRole('button', { name: 'Close' }).click();

  log('start a run: pending, as no worker runs yet');
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/run_/);
  const runId = page.url().split('/runs/')[1];
  await until('the pending badge', async () => (await statusOf(page)) === 'pending');

  log('a worker starts: the page moves to running by itself');
  const worker = startWorker();
  try {
    // Wait for a moment that shows every partition state at once: one done,
    // one running, the others pending (one worker takes them in turn).
    await until('running with progress and partition bars', async () => {
      if ((await statusOf(page)) !== 'running') return false;
      const states = await page.locator('li.partition').evaluateAll((lis) => lis.map((li) => li.dataset.status));
      const processed = Number((await page.getByTestId('processed').innerText()).replaceAll(',', ''));
      return states.length === 4 && states.includes('completed') && states.includes('running')
        && processed > 0 && processed < ROWS;
    }, 90_000);
    await shot(page, 'run-running-1280.png', DESKTOP);
    await shot(page, 'run-running-390.png', PHONE);
    assert.match(
      await page.getByRole('progressbar', { name: 'Rows processed' }).getAttribute('aria-valuetext'),
      new RegExp(` of ${ROWS.toLocaleString('en-US')} `),
    );

    log('the run ends completed_with_errors, still without a reload');
    await until('completed_with_errors', async () => (await statusOf(page)) === 'completed_with_errors', 180_000);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');
    const parts = page.locator('li.partition');
    assert.equal(await parts.count(), 4);
    for (let i = 0; i < 4; i += 1) {
      assert.equal(await parts.nth(i).getAttribute('data-status'), 'completed');
      assert.equal(await parts.nth(i).getByRole('progressbar').getAttribute('aria-valuenow'), '100');
    }
    // A bad e-mail every 1,000th row, and the two rows of markup.
    const failed = ROWS / 1000 + 2;
    assert.equal(await page.getByTestId('failed').innerText(), failed.toLocaleString('en-US'));
    assert.equal(await page.getByRole('button', { name: 'Cancel' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Retry' }).isEnabled(), true);

    log('the errors table shows row, column, value and message, markup as text');
    const first = page.getByRole('region', { name: 'First validation errors' });
    const imgRow = first.getByRole('row').filter({ hasText: '<img src=x onerror=alert(1)>' });
    assert.deepEqual(
      (await imgRow.locator('td').allInnerTexts()).map((t) => t.trim()),
      ['7', 'email', '<img src=x onerror=alert(1)>', 'Invalid email format'],
    );
    const scriptRow = first.getByRole('row').filter({ hasText: '<script>alert(document.domain)</script>' });
    assert.deepEqual(
      (await scriptRow.locator('td').allInnerTexts()).map((t) => t.trim()),
      ['11', 'age', '<script>alert(document.domain)</script>', 'Expected integer'],
    );
    assert.equal(await page.locator('main img, main script').count(), 0, 'markup from a file became elements');
    assert.equal(await first.getByRole('row').count(), 21, 'the first 20 errors and the header');
    await shot(page, 'run-errors-1280.png', DESKTOP);
    await shot(page, 'run-errors-390.png', PHONE);

    log('all errors, page by page, from the errors endpoint');
    await page.getByRole('button', { name: 'Show all errors, page by page' }).click();
    const all = page.getByRole('region', { name: 'All validation errors' });
    await all.waitFor();
    await page.getByText(`Errors 1–50 of ${failed}`).waitFor();
    assert.equal(await all.getByRole('row').count(), 51);
    await page.getByRole('button', { name: 'Next →' }).click();
    await page.getByText(`Errors 51–${failed} of ${failed}`).waitFor();
    assert.equal(await all.getByRole('row').count(), failed - 50 + 1);
    await page.getByRole('button', { name: '← Previous' }).click();
    await page.getByText(`Errors 1–50 of ${failed}`).waitFor();

    log('Download CSV equals the endpoint\'s CSV');
    const [csvDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    assert.equal(csvDownload.suggestedFilename(), `pipeline-run-${runId}-errors.csv`);
    const csvFile = await readFile(await csvDownload.path(), 'utf8');
    const csvApi = await apiCall('GET', `/pipelines/${pipelineId}/runs/${runId}/errors`, { accept: 'text/csv' });
    assert.equal(csvApi.status, 200);
    assert.equal(csvFile, csvApi.text);
    assert.match(csvFile, /^Row,Column,Value,Error\r\n/);

    log('Download JSON equals the endpoint\'s JSON');
    const [jsonDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download JSON' }).click(),
    ]);
    const jsonApi = await apiCall('GET', `/pipelines/${pipelineId}/runs/${runId}/errors`);
    assert.deepEqual(JSON.parse(await readFile(await jsonDownload.path(), 'utf8')), JSON.parse(jsonApi.text));

    log('Retry opens the new run, which says what it retries and where it resumes');
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.waitForURL((u) => /\/runs\/run_/.test(u.href) && !u.href.endsWith(runId));
    const retryId = page.url().split('/runs/')[1];
    const retryRun = JSON.parse((await apiCall('GET', `/pipelines/${pipelineId}/runs/${retryId}`)).text);
    assert.equal(retryRun.metadata.retryOf, runId);
    const lineage = page.locator('[data-lineage=retry]');
    await lineage.waitFor();
    assert.equal((await lineage.innerText()).trim(), `Retry of ${runId}`);
    assert.equal(
      (await page.locator('[data-lineage=resume]').innerText()).trim(),
      `resumed from row ${retryRun.metadata.resumeFromRow.toLocaleString('en-US')}`,
    );
    assert.equal(await page.getByRole('link', { name: runId }).getAttribute('href'), `#/pipelines/${pipelineId}/runs/${runId}`);
    await until('the retry to end', async () => ['completed', 'completed_with_errors', 'failed'].includes(await statusOf(page)), 120_000);
    await page.locator('.timeline .stage-retry').first().waitFor();
  } finally {
    worker.kill('SIGTERM');
  }

  log('a connector in use is not deleted, and the page says why');
  await page.getByRole('link', { name: 'Connectors' }).click();
  const inUse = page.getByRole('row', { name: /Test bucket/ });
  await inUse.getByRole('button', { name: 'Delete' }).click();
  await inUse.getByRole('button', { name: 'Yes, delete' }).click();
  await page.getByRole('alert').filter({ hasText: /pipeline/i }).waitFor();
  assert.equal(await page.getByRole('row', { name: /Test bucket/ }).count(), 1);

  log('the pipelines list, with the last run');
  await page.getByRole('link', { name: 'Pipelines', exact: true }).first().click();
  const listRow = page.getByRole('row', { name: new RegExp('Customers') });
  await listRow.waitFor();
  await listRow.locator('[data-status]').waitFor();
  assert.match(await listRow.innerText(), /upsert/);
  await shot(page, 'pipelines-1280.png', DESKTOP);
  await shot(page, 'pipelines-390.png', PHONE);

  log('API keys: create one (shown once, copied), revoke another');
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByLabel('Name').fill('to revoke');
  await page.getByLabel('Role').selectOption('editor');
  await page.getByRole('button', { name: 'Create key' }).click();
  await page.getByTestId('new-key').waitFor();
  await page.getByRole('button', { name: 'Done' }).click();
  await page.getByLabel('Name').fill('viewer for the test');
  await page.getByLabel('Role').selectOption('viewer');
  await page.getByRole('button', { name: 'Create key' }).click();
  const viewerKey = (await page.getByTestId('new-key').innerText()).trim();
  assert.match(viewerKey, /^sk_/);
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByText('Copied to the clipboard.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), viewerKey);
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await page.getByTestId('new-key').count(), 0, 'the key is shown once');
  const revokeRow = page.getByRole('row', { name: /to revoke/ });
  await revokeRow.getByRole('button', { name: 'Revoke' }).click();
  await revokeRow.getByRole('button', { name: 'Yes, revoke' }).click();
  await revokeRow.getByText(/^revoked/).waitFor();

  log('sign out forgets the key');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.key')), null);

  assert.deepEqual(problems, [], 'dialogs, page errors or console errors');
  await context.close();
  return { pipelineId, runId, viewerKey };
}

async function viewerJourney(browser, { pipelineId, runId, viewerKey }) {
  const context = await newContext(browser);
  const page = await context.newPage();
  // Expected failures: the ledger probe, and the forged requests below.
  const problems = watch(page, [/\/files\?/, /\/runs$/, /\/retry$/, /\/cancel$/]);

  log('a viewer signs in and sees no controls');
  await signIn(page, viewerKey);
  assert.equal(await page.locator('.top .role').textContent(), 'viewer');
  assert.equal(await page.getByRole('link', { name: 'API keys' }).count(), 0);
  assert.equal(await page.getByRole('link', { name: 'New pipeline' }).count(), 0);
  await page.getByRole('link', { name: /Customers/ }).first().click();
  await page.getByRole('heading', { name: 'Runs' }).waitFor();
  for (const name of ['Start run', 'Dry run', 'Pause', 'Resume', 'Edit', 'Delete']) {
    assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `${name} shown to a viewer`);
    assert.equal(await page.getByRole('link', { name, exact: true }).count(), 0, `${name} shown to a viewer`);
  }
  await page.goto(`${BASE}/#/pipelines/${pipelineId}/runs/${runId}`);
  await page.getByRole('heading', { name: /Rejected rows/ }).waitFor();
  for (const name of ['Retry', 'Cancel', 'Start run']) {
    assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `${name} shown to a viewer`);
  }
  assert.equal(await page.getByRole('button', { name: 'Download CSV' }).count(), 1, 'viewers may export errors');
  await page.getByRole('link', { name: 'Connectors' }).click();
  await page.getByRole('row', { name: /Test bucket/ }).waitFor();
  for (const name of ['New connector', 'Delete']) {
    assert.equal(await page.getByRole('button', { name }).count(), 0, `${name} shown to a viewer`);
  }

  log('a forged request from the viewer\'s session is refused');
  const forged = await page.evaluate(async ({ pipelineId: p, runId: r }) => {
    const key = sessionStorage.getItem('sluice.key');
    const post = async (url) => {
      const resp = await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${key}` } });
      return [resp.status, (await resp.json()).error.code];
    };
    return {
      start: await post(`/api/v1/pipelines/${p}/runs`),
      retry: await post(`/api/v1/pipelines/${p}/runs/${r}/retry`),
    };
  }, { pipelineId, runId });
  assert.deepEqual(forged, { start: [403, 'forbidden'], retry: [403, 'forbidden'] });

  assert.deepEqual(problems, [], 'dialogs, page errors or console errors');
  await context.close();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('SLUICE_CHROMIUM'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  let page = null;
  try {
    const facts = await adminJourney(browser);
    await viewerJourney(browser, facts);
    console.log('dashboard: all steps passed');
  } catch (e) {
    console.error(`dashboard: FAILED at "${step}": ${e.stack || e}`);
    for (const context of browser.contexts()) {
      for (const p of context.pages()) page = p;
    }
    if (page) {
      const file = path.join(SHOTS, 'failure.png');
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`dashboard: screenshot of the failure: ${file}`);
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main();
