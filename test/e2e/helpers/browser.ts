/**
 * Debian's Chromium driven by playwright-core (no browser download: `executablePath`). Missing Chromium is an
 * error with the fix, never a skip: CI installs it (.ci/run).
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = process.env.FEDMON_CHROMIUM ?? '/usr/bin/chromium'

export async function launchChromium (): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; .ci/run does) or set FEDMON_CHROMIUM to its path`)
  }
  // as root Chromium needs --no-sandbox; /dev/shm is small in containers
  return await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
}
