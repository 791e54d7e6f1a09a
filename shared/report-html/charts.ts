/**
 * What a chart shows, as data: the pages describe charts with these specs and the browser script draws them
 * (uPlot). A spec never holds markup, only numbers and plain labels (escaped when drawn as text).
 */
export type SeriesStyle = 'current' | 'reference' | 'bound' | 'guide' | 'negative' | 'positive' | 'unlabeled' | 'metric' | 'included' | 'dropped'

export interface ChartSeries {
  label: string
  values: Array<number | null>
  style: SeriesStyle
  /** Draw as bars (categorical x); `barSide` places two bar series side by side (-1 left, 1 right). */
  bars?: boolean
  barSide?: -1 | 0 | 1
  /** Draw point markers (sparse series). */
  points?: boolean
}

export interface ChartSpec {
  /** Element id suffix; never derived from a name out of a spec (those are attacker-controlled). */
  id: string
  title: string
  /** x: numbers; time charts: epoch seconds; bar charts: 0..n-1 with `xTicks` as labels. */
  x: number[]
  xTicks?: string[]
  time?: boolean
  xLabel: string
  yLabel: string
  xRange?: [number, number]
  yRange?: [number, number]
  series: ChartSeries[]
  /** Fill between two series (indices into `series`): the certified AUC bound. */
  band?: { upper: number, lower: number }
  small?: boolean
}

/**
 * A page's markup plus the charts its placeholders stand for. `deferred`: markup of long tables (the text
 * equivalents of long histories) that the browser inserts into `[data-deferred=ID]` when its <details> opens,
 * so a page with 1,000 reports does not parse thousands of hidden rows up front.
 */
export interface RenderedSection { html: string, charts: ChartSpec[], deferred?: Record<string, string> }

/** Tables longer than this many rows are deferred (RenderedSection.deferred). */
export const DEFER_ROWS = 100
