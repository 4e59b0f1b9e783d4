// A reader of the Prometheus text exposition format (0.0.4), enough for the samples the
// controller needs: name, labels, value. Comments and types are skipped. Hand-written: the npm
// parsers are unmaintained and untyped, and the format's sample line is small and stable.

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy

/** Samples whose name starts with one of `prefixes` (all when none is given). */
export function parsePrometheusText (text: string, prefixes?: readonly string[]): Sample[] {
  const out: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (prefixes !== undefined && !prefixes.some((p) => line.startsWith(p))) continue
    const m = SAMPLE.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    const body = m[2]
    if (body !== undefined && body !== '') {
      LABEL.lastIndex = 0
      let l: RegExpExecArray | null
      while ((l = LABEL.exec(body)) !== null) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1')
    }
    out.push({ name: m[1]!, labels, value: parseValue(m[3]!) })
  }
  return out
}

function parseValue (s: string): number {
  if (s === '+Inf') return Infinity
  if (s === '-Inf') return -Infinity
  return Number(s)
}
