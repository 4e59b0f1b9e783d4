/** Errors of the dev server's own API (options, start-up); wire errors are answered as Nacos does. */
export class DevServerError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'DevServerError'
    this.code = code
  }
}

/** A request Nacos would refuse: carries the status and the body Nacos answers with. */
export class HttpAnswer extends Error {
  readonly status: number
  readonly body: string
  readonly contentType: string
  constructor(status: number, body: string, contentType = 'text/plain;charset=UTF-8') {
    super(body)
    this.status = status
    this.body = body
    this.contentType = contentType
  }
}
