/**
 * Each task's headline figure: what a segment table sorts by and what the dashboard shows first. Imports nothing,
 * so the browser dashboard (coordinator/dashboard/client) can use it beside the Task modules that declare it.
 */
export interface MainMetric { label: string, key: string, higherIsBetter: boolean }

export const MAIN_METRICS = {
  binary: { label: 'AUC', key: 'auc', higherIsBetter: true },
  regression: { label: 'MAE', key: 'mae', higherIsBetter: false },
  multiclass: { label: 'macro AUC', key: 'macro_auc', higherIsBetter: true }
} as const satisfies Record<string, MainMetric>

/** The headline figure of a report's task (`spec.task`; absent: binary). */
export function mainMetricOfTask (task: string | undefined): MainMetric {
  return (MAIN_METRICS as Record<string, MainMetric>)[task ?? 'binary'] ?? MAIN_METRICS.binary
}
