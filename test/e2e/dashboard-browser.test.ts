/**
 * The dashboard in a real browser (Debian's Chromium via playwright-core): a coordinator with three agents runs
 * a reference and a current round; the browser signs in, goes overview → monitor → report by clicking, and every
 * number shown must equal the report's JSON. No console error, no request off the coordinator's origin. The
 * `fedmon report --html` file is opened from file:// with the network off and must show the same numbers.
 * A category named `<script>…` (and a model name with markup) must show as text and never run.
 * Screenshots go to the federation's temp dir (kept on failure); with FEDMON_DOCS_IMG=1 also to docs/img/.
 */
import '../../shared/polyfill.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, copyFileSync, rmSync, readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Browser, Page, BrowserContext } from 'playwright-core'
import { Federation, sampleRecords, REFERENCE_WINDOW, CURRENT_WINDOW, SAMPLE_SPEC } from './helpers/federation.js'
import { runCli, killAllDaemons, httpJson } from './helpers/processes.js'
import { launchChromium } from './helpers/browser.js'
import { expectedMetricText } from '../fixtures/reports.js'
import { num, int } from '../../shared/report-html/format.js'
import type { Report } from '../../shared/report.js'

const SITES = ['site-1', 'site-2', 'site-3']
const TOKEN = 'dashboard-e2e-token-0123456789abcdef'
const HOSTILE_CATEGORY = '<script>window.__pwned = 1</script>'
const MODEL = 'dash <i>e2e</i> & co'
const SPEC = { ...SAMPLE_SPEC, model: MODEL, features: { ...SAMPLE_SPEC.features, colour: { type: 'categorical', categories: ['red', HOSTILE_CATEGORY, 'blue'] } } }
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

let fed: Federation
let browser: Browser
let shots: string
let reference: Report
let current: Report
let passed = 0
const TESTS = 3

before(async () => {
  browser = await launchChromium() // fails with the fix when Chromium is missing (CI installs it)
  const records = Object.fromEntries(SITES.map((s, i) => [s, sampleRecords(300 + i, 160, { weeks: 2 }).map(r => ({ ...r, features: { ...r.features, colour: r.features.colour === 'green' ? HOSTILE_CATEGORY : r.features.colour } }))]))
  fed = await Federation.create({ sites: SITES.map(name => ({ name, records: records[name] })), spec: SPEC, apiToken: TOKEN, privacy: { minAgents: 3, threshold: 2 } })
  shots = join(fed.root, 'screenshots')
  mkdirSync(shots, { recursive: true })
  await fed.startCoordinator()
  for (const s of SITES) fed.startAgent(s)
  await fed.waitForOnline(SITES)
  for (const [window, ref] of [[REFERENCE_WINDOW, true], [CURRENT_WINDOW, false]] as const) {
    const res = await fed.runRound(window, { reference: ref })
    assert.equal(res.code, 0, `round ${window}: ${res.stderr}`)
  }
  const list = await httpJson(`${fed.api}/v1/reports?last=10`, { token: TOKEN })
  const reports = list.body.reports as Report[]
  reference = reports.find(r => r.round.kind === 'reference') as Report
  current = reports.find(r => r.round.kind === 'current') as Report
  assert.ok(reference !== undefined && current !== undefined, 'a reference and a current report')
  const colour = current.histograms?.features.colour
  assert.ok(colour?.type === 'categorical' && colour.categories.includes(HOSTILE_CATEGORY))
})

after(async () => {
  await browser?.close()
  await killAllDaemons()
  if (process.env.FEDMON_KEEP_E2E === undefined && fed !== undefined && passed === TESTS) rmSync(fed.root, { recursive: true, force: true })
  else if (fed !== undefined) process.stderr.write(`e2e files and screenshots kept in ${fed.root}\n`)
})

/** A page that records console errors, page errors and every request's URL. */
async function watchedPage (context: BrowserContext): Promise<{ page: Page, errors: string[], requests: string[] }> {
  const page = await context.newPage()
  const errors: string[] = []
  const requests: string[] = []
  page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
  page.on('pageerror', err => { errors.push(err.message) })
  page.on('request', req => { requests.push(req.url()) })
  return { page, errors, requests }
}

async function ready (page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 })
}

/** Every [data-metric] element's text equals the report's value, formatted as the pages format it. */
async function assertNumbersMatch (page: Page, report: Report): Promise<number> {
  const shown = await page.$$eval('main [data-metric]', els => els.map(e => [e.getAttribute('data-metric') as string, (e.textContent ?? '').trim()]))
  for (const [path, text] of shown) assert.equal(text, expectedMetricText(report, path, { num, int }), `${path} on ${page.url()}`)
  return shown.length
}

async function assertHostileTextInert (page: Page): Promise<void> {
  assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined', 'the category name never ran')
  assert.ok(await page.getByText(HOSTILE_CATEGORY, { exact: false }).count() > 0, 'the category name is shown as text')
}

async function shot (page: Page, name: string, docName?: string): Promise<void> {
  const file = join(shots, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  if (docName !== undefined && process.env.FEDMON_DOCS_IMG !== undefined) {
    mkdirSync(join(REPO, 'docs', 'img'), { recursive: true })
    copyFileSync(file, join(REPO, 'docs', 'img', docName))
  }
}

test('sign in, overview → monitor → report by clicking: the numbers are the report\'s, nothing leaves the origin', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const { page, errors, requests } = await watchedPage(context)
  const origin = new URL(fed.api).origin

  const first = await page.goto(`${fed.api}/`)
  assert.ok(first !== null)
  assert.match(page.url(), /\/login\?next=%2F$/, 'a token is configured: the login form first')
  await page.fill('input[name="token"]', TOKEN)
  await Promise.all([page.waitForURL(`${origin}/`), page.click('button[type="submit"]')])
  const cookies = await context.cookies()
  const session = cookies.find(c => c.name === 'fedmon_session')
  assert.ok(session !== undefined && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies))

  // overview: the latest report is the current one; three agents online
  await ready(page)
  // AUC, its lower and upper bound, and the estimated AUC while some of the window's labels are missing
  const pending = ((current.performance as Record<string, any>).estimated?.labels.coverage ?? 1) < 1
  assert.equal(await assertNumbersMatch(page, current), pending ? 4 : 3)
  assert.equal(await page.textContent('[data-status="agents.online"]'), '3')
  assert.equal(await page.locator('.chips li').count(), Object.keys(current.drift.features).length)
  await shot(page, 'overview')

  // monitor: AUC chart with its band, small multiples, the heat map with one row per feature, rounds
  await Promise.all([page.waitForURL(/\/monitors\/[^/]+$/), page.getByRole('link', { name: MODEL }).first().click()])
  await ready(page)
  assert.equal(decodeURIComponent(new URL(page.url()).pathname), `/monitors/${MODEL}`)
  assert.equal(await page.textContent('h1 .name'), MODEL, 'the model name is text, not markup')
  assert.equal(await page.locator('h1 i').count(), 0)
  assert.equal(await page.locator('#chart-auc canvas').count(), 1)
  const charts = Number(await page.getAttribute('body', 'data-charts'))
  assert.ok(charts >= 5, `${charts} charts drawn`)
  assert.equal(await page.locator('.uplot').count(), charts)
  for (const name of Object.keys(current.drift.features)) {
    const cell = page.locator('table.heatmap tbody tr', { has: page.locator(`th:text-is("${name}")`) }).locator('td').first()
    assert.equal((await cell.textContent())?.split(' ')[0], num(current.drift.features[name].psi, 2), `heat map PSI of ${name}`)
    assert.match(String(await cell.getAttribute('class')), new RegExp(`heat-${current.drift.features[name].status}`))
  }
  await shot(page, 'monitor', 'dashboard-monitor.png')

  // report: every figure equals the JSON; the hostile category is inert text
  await Promise.all([page.waitForURL(/\/reports\//), page.locator(`a:has-text("${current.id}")`).first().click()])
  await ready(page)
  assert.equal(decodeURIComponent(new URL(page.url()).pathname), `/monitors/${MODEL}/reports/${current.id}`)
  const figures = await assertNumbersMatch(page, current)
  assert.ok(figures >= 20, `${figures} figures checked`)
  await assertHostileTextInert(page)
  assert.equal(await page.locator('script').count(), 1, 'only the dashboard bundle')
  const drawn = Number(await page.getAttribute('body', 'data-charts'))
  assert.equal(drawn, 4 + Object.keys(current.histograms?.features ?? {}).length, 'ROC, PR, reliability, score and one per feature')
  assert.equal(await page.locator('details.chart-table').count(), drawn, 'every chart has its table')
  await shot(page, 'report-light', 'dashboard-report.png')
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.waitForTimeout(100) // the script redraws the charts on the scheme change
  assert.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'), 'rgb(13, 17, 23)')
  await shot(page, 'report-dark')

  // the shareable URL opens the same page directly
  const direct = await page.goto(`${origin}/monitors/${encodeURIComponent(MODEL)}/reports/${encodeURIComponent(current.id)}`)
  assert.match(String(direct?.headers()['content-security-policy']), /script-src 'self'/)
  await ready(page)
  await assertNumbersMatch(page, current)

  assert.deepEqual(errors, [], 'no console errors')
  const foreign = requests.filter(u => new URL(u).origin !== origin)
  assert.deepEqual(foreign, [], 'no request off the coordinator\'s origin')
  await context.close()
  passed++
})

test('fedmon report --html: one self-contained file that renders the same numbers from file:// with the network off', async () => {
  const file = join(fed.root, 'report.html')
  const res = await runCli(['report', current.id, '--html', file, '--api', fed.api, '--token-file', join(fed.root, 'api.token')])
  assert.equal(res.code, 0, res.stderr)
  assert.match(res.stderr, /wrote .*report\.html/)
  const html = readFileSync(file, 'utf8')
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)="(?!data:)/i, 'nothing loaded from elsewhere')

  const context = await browser.newContext({ offline: true, viewport: { width: 1280, height: 900 } })
  const { page, errors, requests } = await watchedPage(context)
  await page.goto(pathToFileURL(file).href)
  await ready(page)
  const figures = await assertNumbersMatch(page, current)
  assert.ok(figures >= 20)
  await assertHostileTextInert(page)
  assert.equal(Number(await page.getAttribute('body', 'data-charts')), 4 + Object.keys(current.histograms?.features ?? {}).length)
  await shot(page, 'report-file')
  assert.deepEqual(errors, [])
  assert.deepEqual(requests.filter(u => !u.startsWith('file:')), [], 'no network request')
  await context.close()
  passed++
})

test('the reference report\'s page: current histograms only, drift "not computed" said in words', async () => {
  const context = await browser.newContext()
  await context.addCookies([{ name: 'fedmon_session', value: await sessionCookie(), url: fed.api }])
  const { page, errors } = await watchedPage(context)
  await page.goto(`${fed.api}/monitors/${encodeURIComponent(MODEL)}/reports/${encodeURIComponent(reference.id)}`)
  await ready(page)
  await assertNumbersMatch(page, reference)
  assert.ok(await page.getByText('no reference window: drift not computed').count() > 0)
  assert.deepEqual(errors, [])
  await context.close()
  passed++
})

async function sessionCookie (): Promise<string> {
  const { sessionValue } = await import('../../coordinator/dashboard.js')
  return sessionValue(TOKEN)
}
