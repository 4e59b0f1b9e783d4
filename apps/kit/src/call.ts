import { request, type Dispatcher } from 'undici'

/** GET a JSON resource from another service through the lane-aware dispatcher. */
export async function callJson(dispatcher: Dispatcher, url: string): Promise<{ status: number; body: unknown }> {
  const res = await request(url, { dispatcher })
  const text = await res.body.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = { error: 'FLOWTAG_DEMO_BAD_UPSTREAM', message: `non-JSON answer from ${url}` }
  }
  return { status: res.statusCode, body }
}
