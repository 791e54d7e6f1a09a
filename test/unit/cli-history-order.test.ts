// `fedmon report history` lists reports by window, oldest window first (issue 14): the API lists them newest
// created first, and a late backfill or a re-run of an old window is created after newer windows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { historyPoints, renderHistory } from '../../bin/ui/history-view.js'
import { makeReport } from './product-fixtures.js'

const day = (d: number): string => new Date(Date.UTC(2026, 0, d)).toISOString()

test('history points are sorted by window (from, then to), whatever order the API lists the reports in', () => {
  // As GET /v1/reports returns them: newest created first. r-backfill covers the oldest window but came last.
  const reports = [
    makeReport({ id: 'r-backfill', from: day(1), to: day(2), createdAt: day(9), auc: 0.71 }),
    makeReport({ id: 'r-3', from: day(3), to: day(4), createdAt: day(5), auc: 0.73 }),
    makeReport({ id: 'r-2b', from: day(2), to: day(4), createdAt: day(4), auc: 0.75 }),
    makeReport({ id: 'r-2', from: day(2), to: day(3), createdAt: day(3), auc: 0.72 })
  ]
  const points = historyPoints(reports, 'auc')
  assert.deepEqual(points.map(p => p.id), ['r-backfill', 'r-2', 'r-2b', 'r-3'])
  assert.deepEqual(points.map(p => p.value), [0.71, 0.72, 0.75, 0.73])
  const text = renderHistory(points, 'auc', { color: false })
  const order = ['r-backfill', 'r-2', 'r-2b', 'r-3'].map(id => text.indexOf(id))
  assert.deepEqual([...order].sort((a, b) => a - b), order, 'the table lists them in window order')
  assert.match(text, /4 reports, oldest first/)
})
