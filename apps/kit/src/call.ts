/** A `fetch` like `app.flowtag.fetch` (lane-aware, by service name). */
type Fetch = (url: string) => Promise<{ status: number; text(): Promise<string> }>

/**
 * GET a JSON resource from another service. A routing failure (no instance, discovery down)
 * rejects fetch with `cause` = the flowtag error, which carries `statusCode` 503 and a code.
 */
export async function callJson (fetch: Fetch, url: string): Promise<{ status: number; body: unknown }> {
  let res
  try {
    res = await fetch(url)
  } catch (err) {
    const cause = (err as { cause?: { code?: string; statusCode?: number; message?: string } }).cause
    return { status: cause?.statusCode ?? 502, body: { error: cause?.code ?? 'FLOWTAG_DEMO_UPSTREAM', message: cause?.message ?? (err as Error).message } }
  }
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = { error: 'FLOWTAG_DEMO_BAD_UPSTREAM', message: `non-JSON answer from ${url}` }
  }
  return { status: res.status, body }
}
