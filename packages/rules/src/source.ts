/**
 * Where RuleSet documents come from. A source only delivers raw text; the RuleStore owns
 * parsing, validation, last-good and the cache file.
 */
export interface RuleSource {
  /** Names the source in errors and logs, e.g. `file /etc/flowtag/rules.json`. */
  readonly name: string
  /** The current document, or undefined when it does not exist. Rejects when unreachable. */
  read(): Promise<string | undefined>
  /**
   * Deliver every later version of the document (undefined when it is deleted) until the
   * returned function is called. Transient failures go to `onError`; the watch keeps going.
   */
  watch(onDocument: (raw: string | undefined) => void, onError: (err: Error) => void): () => void
  /** Release what the source opened (not clients that were passed in). */
  close?(): void | Promise<void>
}
