/**
 * Watches a few files (a daemon's config and roster file) and calls back when one's content changed. Watches the
 * directories, not the files: editors and config tools replace a file by renaming a new one over it, and a
 * watch on the old inode would never hear of it. Events are debounced (a save is several of them) and a file
 * whose bytes did not change (touched, or rewritten the same) is no change.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { createHash } from 'node:crypto'
import type { Logger } from '../log.js'

export interface FileWatcherOptions {
  files: string[]
  /** Called with the files whose content changed since the last call (or since the watch began). */
  onChange: (changed: string[]) => void
  /** Quiet time after the last event before the files are compared (default 200 ms). */
  debounceMs?: number
  logger?: Pick<Logger, 'warn'>
}

/** sha-256 of a file's bytes, or null when it cannot be read (being replaced, or removed). */
function contentHash (file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return null
  }
}

export class FileWatcher {
  private readonly onChange: (changed: string[]) => void
  private readonly debounceMs: number
  private readonly logger: Pick<Logger, 'warn'> | undefined
  private readonly watchers = new Map<string, FSWatcher>()
  private hashes = new Map<string, string | null>()
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor (opts: FileWatcherOptions) {
    this.onChange = opts.onChange
    this.debounceMs = opts.debounceMs ?? 200
    this.logger = opts.logger
    this.setFiles(opts.files)
  }

  /** Watches these files from now on (their current content is the baseline). */
  setFiles (files: string[]): void {
    if (this.closed) return
    const next = new Map<string, string | null>()
    for (const f of files.map(f => resolve(f))) next.set(f, this.hashes.has(f) ? this.hashes.get(f) ?? null : contentHash(f))
    this.hashes = next
    const dirs = new Set([...next.keys()].map(f => dirname(f)))
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) { w.close(); this.watchers.delete(dir) }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          // No name (some platforms): compare every file.
          if (name === null || [...this.hashes.keys()].some(f => dirname(f) === dir && basename(f) === name.toString())) this.schedule()
        })
        w.on('error', (err) => { this.logger?.warn({ dir, err: err.message }, 'cannot watch the roster\'s directory any longer: reload with SIGHUP') })
        this.watchers.set(dir, w)
      } catch (err) {
        this.logger?.warn({ dir, err: (err as Error).message }, 'cannot watch the roster\'s directory: reload with SIGHUP')
      }
    }
  }

  close (): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
  }

  private schedule (): void {
    if (this.closed) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      const changed: string[] = []
      for (const [file, before] of this.hashes) {
        const now = contentHash(file)
        if (now === before) continue
        this.hashes.set(file, now)
        if (now !== null) changed.push(file) // a file gone for now is no roster: wait for the new one
      }
      if (changed.length > 0 && !this.closed) this.onChange(changed)
    }, this.debounceMs)
    this.timer.unref()
  }
}
