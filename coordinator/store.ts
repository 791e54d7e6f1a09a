/**
 * The coordinator's embedded store: rounds, reports, reference vectors, agents' liveness.
 * better-sqlite3 (v12; v13 segfaults on Node 20) in WAL mode with synchronous=FULL, so a committed
 * transaction survives `kill -9` and power loss; a write interrupted mid-way is rolled back on next open.
 * The schema is versioned through `PRAGMA user_version` and upgraded by the ordered MIGRATIONS below.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { endianness } from 'node:os'
import { FedmonError } from '../shared/errors.js'
import type { Report } from '../shared/report.js'
import type { AgentSeen, ReportCommitExtras, ReportStore, RoundKind, RoundOutcome } from './contracts.js'

export class StoreError extends FedmonError {
  constructor (message: string, code: string = 'ERR_STORE', options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'StoreError'
  }
}

/** One schema step. `up` runs inside the same transaction that bumps user_version. */
export interface Migration { version: number, description: string, up: (db: Database.Database) => void }

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'rounds, reports, reference vectors, current reference, agents',
    up: (db) => db.exec(`
      CREATE TABLE rounds (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        scheduled_window_key TEXT UNIQUE,
        body TEXT NOT NULL
      );
      CREATE TABLE reports (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        round_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX reports_kind ON reports (kind, seq);
      CREATE TABLE reference_vectors (
        report_id TEXT PRIMARY KEY,
        spec_hash TEXT NOT NULL,
        length INTEGER NOT NULL,
        vector BLOB NOT NULL
      );
      CREATE TABLE current_reference (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        report_id TEXT NOT NULL,
        set_at TEXT NOT NULL
      );
      CREATE TABLE agents (
        peer_id TEXT PRIMARY KEY,
        last_seen TEXT,
        last_included_round TEXT
      );
    `)
  },
  {
    version: 2,
    description: 'scheduled windows claimed by the scheduler, so a window whose round never started still counts as run',
    up: (db) => db.exec(`
      CREATE TABLE scheduled_windows (
        key TEXT PRIMARY KEY,
        claimed_at TEXT NOT NULL,
        round_id TEXT,
        note TEXT
      );
      CREATE INDEX rounds_started ON rounds (started_at);
    `)
  },
  {
    version: 3,
    description: 'scheduled windows keep their window, state, last failure and retry plan (failed and missed windows are listed; a retry survives a restart)',
    up: (db) => db.exec(`
      ALTER TABLE scheduled_windows ADD COLUMN window_from INTEGER;
      ALTER TABLE scheduled_windows ADD COLUMN window_to INTEGER;
      ALTER TABLE scheduled_windows ADD COLUMN state TEXT NOT NULL DEFAULT 'started';
      ALTER TABLE scheduled_windows ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE scheduled_windows ADD COLUMN next_attempt_at INTEGER;
      ALTER TABLE scheduled_windows ADD COLUMN retry_until INTEGER;
      ALTER TABLE scheduled_windows ADD COLUMN code TEXT;
      ALTER TABLE scheduled_windows ADD COLUMN message TEXT;
      ALTER TABLE scheduled_windows ADD COLUMN updated_at TEXT;
      UPDATE scheduled_windows SET
        window_from = CAST(substr(key, 1, instr(key, '-') - 1) AS INTEGER),
        window_to = CAST(substr(key, instr(key, '-') + 1) AS INTEGER),
        state = CASE WHEN note = 'done' THEN 'done' WHEN note LIKE 'failed%' THEN 'failed' ELSE 'started' END,
        message = CASE WHEN note LIKE 'failed: %' THEN substr(note, 9) ELSE NULL END,
        updated_at = claimed_at;
      CREATE INDEX scheduled_windows_state ON scheduled_windows (state, window_from);
    `)
  },
  {
    version: 4,
    description: 'report versions (label-refresh rounds): a window\'s reports form a chain, the latest version stands in for the window in lists; every report keeps its summed vector',
    up: (db) => db.exec(`
      ALTER TABLE reports ADD COLUMN first_id TEXT;
      ALTER TABLE reports ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE reports ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE reports ADD COLUMN list_seq INTEGER;
      UPDATE reports SET first_id = id, list_seq = seq;
      CREATE INDEX reports_current ON reports (superseded, kind, list_seq);
      CREATE INDEX reports_first ON reports (first_id, version);
    `)
  },
  {
    version: 5,
    description: 'monitors (issue 12): rounds, reports, scheduled windows and the current reference belong to a monitor (\'\' = from before monitors, adopted by the first monitor at start)',
    up: (db) => db.exec(`
      ALTER TABLE reports ADD COLUMN monitor TEXT NOT NULL DEFAULT '';
      CREATE INDEX reports_monitor ON reports (monitor, superseded, kind, list_seq);
      CREATE TABLE rounds_v5 (
        id TEXT PRIMARY KEY,
        monitor TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        scheduled_window_key TEXT,
        body TEXT NOT NULL,
        UNIQUE (monitor, scheduled_window_key)
      );
      INSERT INTO rounds_v5 (id, kind, status, started_at, scheduled_window_key, body)
        SELECT id, kind, status, started_at, scheduled_window_key, body FROM rounds ORDER BY rowid;
      DROP TABLE rounds;
      ALTER TABLE rounds_v5 RENAME TO rounds;
      CREATE INDEX rounds_started ON rounds (started_at);
      CREATE INDEX rounds_monitor ON rounds (monitor, started_at);
      CREATE TABLE scheduled_windows_v5 (
        monitor TEXT NOT NULL DEFAULT '',
        key TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        round_id TEXT,
        note TEXT,
        window_from INTEGER,
        window_to INTEGER,
        state TEXT NOT NULL DEFAULT 'started',
        attempts INTEGER NOT NULL DEFAULT 1,
        next_attempt_at INTEGER,
        retry_until INTEGER,
        code TEXT,
        message TEXT,
        updated_at TEXT,
        PRIMARY KEY (monitor, key)
      );
      INSERT INTO scheduled_windows_v5 (key, claimed_at, round_id, note, window_from, window_to, state, attempts, next_attempt_at, retry_until, code, message, updated_at)
        SELECT key, claimed_at, round_id, note, window_from, window_to, state, attempts, next_attempt_at, retry_until, code, message, updated_at FROM scheduled_windows ORDER BY rowid;
      DROP TABLE scheduled_windows;
      ALTER TABLE scheduled_windows_v5 RENAME TO scheduled_windows;
      CREATE INDEX scheduled_windows_state ON scheduled_windows (state, window_from);
      CREATE TABLE current_reference_v5 (
        monitor TEXT PRIMARY KEY,
        report_id TEXT NOT NULL,
        set_at TEXT NOT NULL
      );
      INSERT INTO current_reference_v5 (monitor, report_id, set_at) SELECT '', report_id, set_at FROM current_reference;
      DROP TABLE current_reference;
      ALTER TABLE current_reference_v5 RENAME TO current_reference;
    `)
  }
]

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

/**
 * What the scheduler knows of one window: `started` (claimed, its round may be running or was cut short by a
 * crash), `done`, `failed` (for good), `retrying` (its round could not start for lack of agents; tried
 * again at `nextAttemptAt`), `missed` (closed during downtime, beyond schedule.maxCatchUp: never run).
 */
export type ScheduledWindowState = 'started' | 'done' | 'failed' | 'retrying' | 'missed'
const SCHEDULED_WINDOW_STATES: readonly ScheduledWindowState[] = ['started', 'done', 'failed', 'retrying', 'missed']
export interface ScheduledWindowRecord {
  key: string
  window: { from: number, to: number }
  state: ScheduledWindowState
  /** The round of the latest attempt, when one started. */
  roundId: string | null
  attempts: number
  /** Epoch ms; set while `retrying`. */
  nextAttemptAt: number | null
  /** Epoch ms: no attempt after this. */
  retryUntil: number | null
  failure: { code: string, message: string } | null
  claimedAt: string
  updatedAt: string
}
export type ScheduledWindowUpdate = Omit<ScheduledWindowRecord, 'claimedAt' | 'updatedAt' | 'roundId' | 'attempts' | 'nextAttemptAt' | 'retryUntil' | 'failure'> &
  Partial<Pick<ScheduledWindowRecord, 'roundId' | 'attempts' | 'nextAttemptAt' | 'retryUntil' | 'failure'>>

/** A stored report's window, for the coordinator's window guard rails. */
export interface ReportWindow { reportId: string, roundId: string, kind: string, window: { from: string, to: string } }

/** The store's full surface: the ReportStore contract plus what the scheduler and tests use. */
export interface SqliteReportStore extends ReportStore {
  /** Records that the scheduler handled `key` (even if its round failed to start), so it is never run twice. */
  markScheduledWindow (key: string, note: { roundId?: string | null, note?: string }): void
  /** Every version of the window of report `reportId` (first round, then each label refresh), oldest first; [] when unknown. */
  listVersions (reportId: string): Report[]
  /** Failed and aborted rounds, newest last. */
  listFailedRounds (opts?: { last?: number }): RoundOutcome[]
  /** Inserts or updates the scheduler's record of a window (at-most-once claims, failures, retries, missed windows). */
  recordScheduledWindow (update: ScheduledWindowUpdate): void
  getScheduledWindow (key: string): ScheduledWindowRecord | null
  /** Newest last (by window start); `states` filters. */
  listScheduledWindows (opts?: { states?: readonly ScheduledWindowState[], last?: number }): ScheduledWindowRecord[]
  /** The end of the latest window the scheduler has any record of (epoch ms), or null. */
  latestScheduledWindowEnd (): number | null
  /** Reports whose window overlaps [from, to) (epoch ms). */
  reportsOverlapping (window: { from: number, to: number }): ReportWindow[]
  /** True when a vector is stored for this report (so it can become the reference). */
  hasReferenceVector (reportId: string): boolean
  /** The monitor this view is scoped to; null for the root view (lists span every monitor; writes go to monitor ''). */
  readonly monitor: string | null
  /** The same store seen by one monitor: its rounds, reports, scheduled windows and current reference. */
  forMonitor (name: string): SqliteReportStore
  /** Gives rows without a monitor (stored before monitors) to `name`; returns how many rows moved. */
  adoptUnscoped (name: string): number
  /** Every monitor that has anything stored, sorted. */
  monitorNames (): string[]
  schemaVersion (): number
  integrityCheck (): string
  readonly path: string
}

/** Applies pending migrations in order; each one atomically with its user_version bump. */
export function migrate (db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const current = db.pragma('user_version', { simple: true }) as number
  const latest = migrations[migrations.length - 1]?.version ?? 0
  if (current > latest) {
    throw new StoreError(`store schema version ${current} is newer than this fedmon understands (${latest}); upgrade fedmon`, 'ERR_STORE_VERSION')
  }
  for (const m of migrations) {
    if (m.version <= current) continue
    db.transaction(() => {
      m.up(db)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
  return db.pragma('user_version', { simple: true }) as number
}

const LITTLE_ENDIAN = endianness() === 'LE'

function vectorToBlob (vector: Uint32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength)
  const out = Buffer.alloc(vector.length * 4)
  for (let i = 0; i < vector.length; i++) out.writeUInt32LE(vector[i], i * 4)
  return out
}

function blobToVector (blob: Buffer, length: number): Uint32Array {
  if (blob.length !== length * 4) throw new StoreError(`reference vector blob has ${blob.length} bytes, expected ${length * 4}`, 'ERR_STORE_CORRUPT')
  const out = new Uint32Array(length) // copy: the blob's buffer may be unaligned
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(blob)
  else for (let i = 0; i < length; i++) out[i] = blob.readUInt32LE(i * 4)
  return out
}

function parseJson<T> (text: string, what: string): T {
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new StoreError(`stored ${what} is not valid JSON`, 'ERR_STORE_CORRUPT', { cause: err })
  }
}

function kindFilter (kind: RoundKind | 'any' | undefined): RoundKind | null {
  return kind === undefined || kind === 'any' ? null : kind
}

function lastLimit (last: number | undefined): number {
  if (last === undefined) return -1 // SQLite: no limit
  if (!Number.isInteger(last) || last < 0) throw new StoreError(`last must be a non-negative integer, got ${last}`, 'ERR_STORE_ARG')
  return last
}

interface WindowRow {
  key: string, claimed_at: string, round_id: string | null, window_from: number | null, window_to: number | null, state: string,
  attempts: number, next_attempt_at: number | null, retry_until: number | null, code: string | null, message: string | null, updated_at: string | null
}

function windowRecord (r: WindowRow): ScheduledWindowRecord {
  // Rows from before version 3 carry their window only in the key ("from-to").
  const [kf, kt] = r.key.split('-').map(Number)
  return {
    key: r.key,
    window: { from: r.window_from ?? kf, to: r.window_to ?? kt },
    state: r.state as ScheduledWindowState,
    roundId: r.round_id,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    retryUntil: r.retry_until,
    failure: r.code !== null || r.message !== null ? { code: r.code ?? 'ERR_ROUND_FAILED', message: r.message ?? '' } : null,
    claimedAt: r.claimed_at,
    updatedAt: r.updated_at ?? r.claimed_at
  }
}

/** Opens (creating if needed) the store at `path` (":memory:" for tests) and migrates it to SCHEMA_VERSION. */
export function openStore (path: string): SqliteReportStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  let db: Database.Database
  try {
    db = new Database(path)
  } catch (err) {
    throw new StoreError(`cannot open store ${path}: ${(err as Error).message}`, 'ERR_STORE_OPEN', { cause: err })
  }
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    db.pragma('busy_timeout = 5000')
    migrate(db)
  } catch (err) {
    db.close()
    if (err instanceof StoreError) throw err
    throw new StoreError(`cannot open store ${path}: ${(err as Error).message}`, 'ERR_STORE_OPEN', { cause: err })
  }

  // Every row belongs to a monitor (issue 12 §1). `@m` is the view's monitor, or NULL for the root view, whose
  // lists span every monitor; `@mk` the monitor keyed state (scheduled windows, current reference) belongs to.
  const stmt = {
    upsertRound: db.prepare(`INSERT INTO rounds (id, monitor, kind, status, started_at, scheduled_window_key, body)
      VALUES (@id, @mk, @kind, @status, @startedAt, @key, @body)
      ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status, started_at = excluded.started_at,
        scheduled_window_key = excluded.scheduled_window_key, body = excluded.body`),
    getRound: db.prepare('SELECT body FROM rounds WHERE id = @id AND (@m IS NULL OR monitor = @m)').pluck(),
    lastRounds: db.prepare('SELECT body FROM rounds WHERE (@m IS NULL OR monitor = @m) ORDER BY started_at DESC, rowid DESC LIMIT @limit').pluck(),
    lastFailedRounds: db.prepare("SELECT body FROM rounds WHERE status IN ('failed', 'aborted') AND (@m IS NULL OR monitor = @m) ORDER BY started_at DESC, rowid DESC LIMIT @limit").pluck(),
    upsertReport: db.prepare(`INSERT INTO reports (id, monitor, round_id, kind, created_at, body, first_id, version) VALUES (@id, @mk, @roundId, @kind, @createdAt, @body, @firstId, @version)
      ON CONFLICT (id) DO UPDATE SET round_id = excluded.round_id, kind = excluded.kind, created_at = excluded.created_at, body = excluded.body,
        first_id = excluded.first_id, version = excluded.version`),
    // A first version lists at its own position; a later version takes its first version's place in lists.
    placeReport: db.prepare(`UPDATE reports SET list_seq = coalesce((SELECT f.list_seq FROM reports f WHERE f.id = @firstId AND f.id <> @id), seq) WHERE id = @id`),
    supersede: db.prepare('UPDATE reports SET superseded = 1 WHERE first_id = @firstId AND id <> @id'),
    getReport: db.prepare('SELECT body FROM reports WHERE id = @id AND (@m IS NULL OR monitor = @m)').pluck(),
    lastReportsAny: db.prepare('SELECT body FROM reports WHERE superseded = 0 AND (@m IS NULL OR monitor = @m) ORDER BY list_seq DESC LIMIT @limit').pluck(),
    lastReportsKind: db.prepare('SELECT body FROM reports WHERE superseded = 0 AND kind = @kind AND (@m IS NULL OR monitor = @m) ORDER BY list_seq DESC LIMIT @limit').pluck(),
    versionsOf: db.prepare('SELECT body FROM reports WHERE first_id = (SELECT first_id FROM reports WHERE id = @id AND (@m IS NULL OR monitor = @m)) ORDER BY version').pluck(),
    upsertVector: db.prepare(`INSERT INTO reference_vectors (report_id, spec_hash, length, vector) VALUES (?, ?, ?, ?)
      ON CONFLICT (report_id) DO UPDATE SET spec_hash = excluded.spec_hash, length = excluded.length, vector = excluded.vector`),
    getVector: db.prepare('SELECT spec_hash, length, vector FROM reference_vectors WHERE report_id = ?'),
    hasVector: db.prepare('SELECT 1 FROM reference_vectors WHERE report_id = ?').pluck(),
    setReference: db.prepare(`INSERT INTO current_reference (monitor, report_id, set_at) VALUES (@mk, @id, @at)
      ON CONFLICT (monitor) DO UPDATE SET report_id = excluded.report_id, set_at = excluded.set_at`),
    getReference: db.prepare('SELECT report_id, set_at FROM current_reference WHERE monitor = @mk'),
    roundHasKey: db.prepare('SELECT 1 FROM rounds WHERE scheduled_window_key = @key AND monitor = @mk').pluck(),
    windowClaimed: db.prepare("SELECT 1 FROM scheduled_windows WHERE key = @key AND monitor = @mk AND state <> 'missed'").pluck(),
    upsertWindow: db.prepare(`INSERT INTO scheduled_windows (monitor, key, claimed_at, round_id, note, window_from, window_to, state, attempts, next_attempt_at, retry_until, code, message, updated_at)
      VALUES (@mk, @key, @now, @roundId, @state, @from, @to, @state, @attempts, @nextAttemptAt, @retryUntil, @code, @message, @now)
      ON CONFLICT (monitor, key) DO UPDATE SET round_id = coalesce(excluded.round_id, scheduled_windows.round_id), note = excluded.note,
        window_from = excluded.window_from, window_to = excluded.window_to, state = excluded.state,
        attempts = CASE WHEN @attemptsSet THEN excluded.attempts ELSE scheduled_windows.attempts END,
        next_attempt_at = excluded.next_attempt_at,
        retry_until = coalesce(excluded.retry_until, scheduled_windows.retry_until),
        code = excluded.code, message = excluded.message, updated_at = excluded.updated_at`),
    getWindow: db.prepare('SELECT * FROM scheduled_windows WHERE key = @key AND monitor = @mk'),
    lastWindows: db.prepare('SELECT * FROM scheduled_windows WHERE (@m IS NULL OR monitor = @m) ORDER BY window_from DESC, rowid DESC LIMIT @limit'),
    latestWindowEnd: db.prepare('SELECT max(window_to) FROM scheduled_windows WHERE (@m IS NULL OR monitor = @m)').pluck(),
    reportsOverlapping: db.prepare(`SELECT id, round_id AS roundId, kind, json_extract(body, '$.window.from') AS wfrom, json_extract(body, '$.window.to') AS wto FROM reports
      WHERE json_extract(body, '$.window.from') < @to AND json_extract(body, '$.window.to') > @from AND (@m IS NULL OR monitor = @m) ORDER BY seq`),
    touchAgent: db.prepare(`INSERT INTO agents (peer_id, last_seen) VALUES (?, ?)
      ON CONFLICT (peer_id) DO UPDATE SET last_seen = CASE WHEN agents.last_seen IS NULL OR excluded.last_seen > agents.last_seen THEN excluded.last_seen ELSE agents.last_seen END`),
    markIncluded: db.prepare(`INSERT INTO agents (peer_id, last_included_round) VALUES (?, ?)
      ON CONFLICT (peer_id) DO UPDATE SET last_included_round = excluded.last_included_round`),
    agents: db.prepare('SELECT peer_id, last_seen, last_included_round FROM agents ORDER BY peer_id'),
    monitorNames: db.prepare(`SELECT monitor FROM reports UNION SELECT monitor FROM rounds UNION SELECT monitor FROM scheduled_windows UNION SELECT monitor FROM current_reference ORDER BY 1`).pluck()
  }

  let closed = false
  const assertOpen = (): void => {
    if (closed) throw new StoreError('store is closed', 'ERR_STORE_CLOSED')
  }

  // Rows stored before monitors (and by the root view) have monitor '': adopted by the deployment's first monitor.
  const adoptTx = db.transaction((name: string) => {
    let n = 0
    for (const table of ['reports', 'rounds', 'scheduled_windows']) n += db.prepare(`UPDATE OR IGNORE ${table} SET monitor = ? WHERE monitor = ''`).run(name).changes
    n += db.prepare("UPDATE OR IGNORE current_reference SET monitor = ? WHERE monitor = '' AND NOT EXISTS (SELECT 1 FROM current_reference WHERE monitor = ?)").run(name, name).changes
    db.prepare("DELETE FROM current_reference WHERE monitor = ''").run()
    return n
  })

  const view = (monitor: string | null): SqliteReportStore => {
    const m = monitor
    const mk = monitor ?? ''

    const saveRound = (round: RoundOutcome): void => {
      assertOpen()
      stmt.upsertRound.run({ id: round.id, mk, kind: round.kind, status: round.status, startedAt: round.startedAt, key: round.scheduledWindowKey ?? null, body: JSON.stringify(round) })
    }

    // One prepared statement per set of states asked for (the scheduler and the API ask for a few fixed sets).
    const byStates = new Map<string, Database.Statement>()
    const windowsInStates = (states: readonly ScheduledWindowState[]): Database.Statement => {
      const known = [...new Set(states)].filter(x => SCHEDULED_WINDOW_STATES.includes(x)).sort()
      const key = known.join(',')
      let statement = byStates.get(key)
      if (statement === undefined) {
        const list = known.map(x => `'${x}'`).join(', ')
        statement = db.prepare(`SELECT * FROM scheduled_windows WHERE state IN (${list === '' ? 'NULL' : list}) AND (@m IS NULL OR monitor = @m) ORDER BY window_from DESC, rowid DESC LIMIT @limit`)
        byStates.set(key, statement)
      }
      return statement
    }

    const recordScheduledWindow = (u: ScheduledWindowUpdate): void => {
      assertOpen()
      stmt.upsertWindow.run({
        mk,
        key: u.key,
        now: new Date().toISOString(),
        roundId: u.roundId ?? null,
        state: u.state,
        from: u.window.from,
        to: u.window.to,
        attempts: u.attempts ?? 1,
        attemptsSet: u.attempts !== undefined ? 1 : 0,
        nextAttemptAt: u.nextAttemptAt ?? null,
        retryUntil: u.retryUntil ?? null,
        code: u.failure?.code ?? null,
        message: u.failure?.message ?? null
      })
    }

    // Report, round status, reference vector, current reference and the included agents commit together: a kill
    // between separate commits could leave a reference report without its vector, or stored but not current.
    const saveReportTx = db.transaction((report: Report, round: RoundOutcome, extras: ReportCommitExtras) => {
      const kind = report.round.kind === 'local' ? round.kind : report.round.kind
      const firstId = report.version?.first ?? report.id
      stmt.upsertReport.run({ id: report.id, mk, roundId: round.id, kind, createdAt: report.createdAt, body: JSON.stringify(report), firstId, version: report.version?.number ?? 1 })
      stmt.placeReport.run({ id: report.id, firstId })
      // The latest version stands in for its window in lists (latest, history, /metrics); the others stay readable.
      if (firstId !== report.id) stmt.supersede.run({ id: report.id, firstId })
      saveRound({ ...round, status: 'done', reportId: report.id, finishedAt: round.finishedAt ?? report.createdAt })
      if (extras.sum !== undefined) {
        const { specHash, vector } = extras.sum
        stmt.upsertVector.run(report.id, specHash, vector.length, vectorToBlob(vector))
      }
      if (extras.reference !== undefined) {
        const { specHash, vector } = extras.reference
        stmt.upsertVector.run(report.id, specHash, vector.length, vectorToBlob(vector))
        stmt.setReference.run({ mk, id: report.id, at: report.createdAt })
      }
      for (const peerId of extras.included ?? []) stmt.markIncluded.run(peerId, round.id)
    })

    return {
      path,
      monitor,
      forMonitor: name => view(name),
      adoptUnscoped: (name) => { assertOpen(); return adoptTx.immediate(name) },
      monitorNames: () => { assertOpen(); return stmt.monitorNames.all() as string[] },
      saveRound,
      getRound (id) {
        assertOpen()
        const body = stmt.getRound.get({ id, m }) as string | undefined
        return body === undefined ? null : parseJson<RoundOutcome>(body, `round ${id}`)
      },
      listRounds (opts = {}) {
        assertOpen()
        const rows = stmt.lastRounds.all({ m, limit: lastLimit(opts.last) }) as string[]
        return rows.reverse().map(b => parseJson<RoundOutcome>(b, 'round'))
      },
      listFailedRounds (opts = {}) {
        assertOpen()
        const rows = stmt.lastFailedRounds.all({ m, limit: lastLimit(opts.last) }) as string[]
        return rows.reverse().map(b => parseJson<RoundOutcome>(b, 'round'))
      },
      saveReport (report, round, extras = {}) {
        assertOpen()
        if (report.round.id !== round.id) throw new StoreError(`report ${report.id} belongs to round ${report.round.id}, not ${round.id}`, 'ERR_STORE_ARG')
        if (extras.reference !== undefined && !(extras.reference.vector instanceof Uint32Array)) throw new StoreError(`reference vector of report ${report.id} must be a Uint32Array`, 'ERR_STORE_ARG')
        saveReportTx.immediate(report, round, extras)
      },
      getReport (id) {
        assertOpen()
        const body = stmt.getReport.get({ id, m }) as string | undefined
        return body === undefined ? null : parseJson<Report>(body, `report ${id}`)
      },
      latestReport (opts = {}) {
        assertOpen()
        const kind = kindFilter(opts.kind)
        const body = (kind === null ? stmt.lastReportsAny.get({ m, limit: 1 }) : stmt.lastReportsKind.get({ m, kind, limit: 1 })) as string | undefined
        return body === undefined ? null : parseJson<Report>(body, 'report')
      },
      listVersions (reportId) {
        assertOpen()
        const rows = stmt.versionsOf.all({ id: reportId, m }) as string[]
        return rows.map(b => parseJson<Report>(b, 'report'))
      },
      listReports (opts = {}) {
        assertOpen()
        const kind = kindFilter(opts.kind)
        const limit = lastLimit(opts.last)
        const rows = (kind === null ? stmt.lastReportsAny.all({ m, limit }) : stmt.lastReportsKind.all({ m, kind, limit })) as string[]
        return rows.reverse().map(b => parseJson<Report>(b, 'report'))
      },
      getReferenceVector (reportId) {
        assertOpen()
        const row = stmt.getVector.get(reportId) as { spec_hash: string, length: number, vector: Buffer } | undefined
        return row === undefined ? null : { specHash: row.spec_hash, vector: blobToVector(row.vector, row.length) }
      },
      hasReferenceVector (reportId) {
        assertOpen()
        return stmt.hasVector.get(reportId) !== undefined
      },
      setCurrentReference (reportId) {
        assertOpen()
        if (stmt.hasVector.get(reportId) === undefined || stmt.getReport.get({ id: reportId, m }) === undefined) {
          const exists = stmt.getReport.get({ id: reportId, m }) !== undefined
          throw new StoreError(exists ? `report ${reportId} has no stored vector, so it cannot serve as the reference` : `no report with id ${reportId}${m !== null ? ` in monitor ${m}` : ''}`, 'ERR_NOT_FOUND')
        }
        stmt.setReference.run({ mk, id: reportId, at: new Date().toISOString() })
      },
      currentReference () {
        assertOpen()
        const row = stmt.getReference.get({ mk }) as { report_id: string, set_at: string } | undefined
        return row === undefined ? null : { reportId: row.report_id, setAt: row.set_at }
      },
      hasScheduledWindow (key) {
        assertOpen()
        return stmt.windowClaimed.get({ key, mk }) !== undefined || stmt.roundHasKey.get({ key, mk }) !== undefined
      },
      markScheduledWindow (key, note) {
        assertOpen()
        const [from, to] = key.split('-').map(Number)
        const text = note.note ?? ''
        const state: ScheduledWindowState = text === 'done' ? 'done' : text.startsWith('failed') ? 'failed' : 'started'
        recordScheduledWindow({ key, window: { from, to }, state, roundId: note.roundId ?? null, failure: state === 'failed' ? { code: 'ERR_ROUND_FAILED', message: text.replace(/^failed:\s*/, '') } : null })
      },
      recordScheduledWindow (u) {
        recordScheduledWindow(u)
      },
      getScheduledWindow (key) {
        assertOpen()
        const row = stmt.getWindow.get({ key, mk }) as WindowRow | undefined
        return row === undefined ? null : windowRecord(row)
      },
      listScheduledWindows (opts = {}) {
        assertOpen()
        const limit = lastLimit(opts.last)
        const rows = (opts.states === undefined ? stmt.lastWindows.all({ m, limit }) : windowsInStates(opts.states).all({ m, limit })) as WindowRow[]
        return rows.reverse().map(windowRecord)
      },
      latestScheduledWindowEnd () {
        assertOpen()
        const end = stmt.latestWindowEnd.get({ m }) as number | null
        return typeof end === 'number' ? end : null
      },
      reportsOverlapping (window) {
        assertOpen()
        const rows = stmt.reportsOverlapping.all({ m, from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() }) as Array<{ id: string, roundId: string, kind: string, wfrom: string, wto: string }>
        return rows.map(r => ({ reportId: r.id, roundId: r.roundId, kind: r.kind, window: { from: r.wfrom, to: r.wto } }))
      },
      touchAgent (peerId, at) {
        assertOpen()
        stmt.touchAgent.run(peerId, at)
      },
      agents () {
        assertOpen()
        const rows = stmt.agents.all() as Array<{ peer_id: string, last_seen: string | null, last_included_round: string | null }>
        return rows.map((r): AgentSeen => ({ peerId: r.peer_id, lastSeen: r.last_seen, lastIncludedRound: r.last_included_round }))
      },
      schemaVersion () {
        return db.pragma('user_version', { simple: true }) as number
      },
      integrityCheck () {
        return db.pragma('integrity_check', { simple: true }) as string
      },
      close () {
        if (closed) return
        closed = true
        try { db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* another reader holds the WAL: a later open checkpoints */ }
        db.close()
      }
    }
  }
  return view(null)
}
