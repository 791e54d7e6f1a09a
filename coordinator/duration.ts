// Moved down to shared/config/duration.ts (config schemas parse durations; shared/ never imports coordinator/).
export * from '../shared/config/duration.js'
