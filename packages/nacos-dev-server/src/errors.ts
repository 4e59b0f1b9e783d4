import { FlowTagError } from '@flowtag/errors'

export const errorCodes = {
  /** Server options are invalid (the message names the field). */
  BAD_OPTION: 'FLOWTAG_DEVSERVER_BAD_OPTION',
  /** The data file cannot be read or is not JSON. */
  DATA_FILE: 'FLOWTAG_DEVSERVER_DATA_FILE'
} as const

export type DevServerErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** Errors of the dev server's own API (options, start-up); wire errors are answered as Nacos does. */
export class DevServerError extends FlowTagError {
  static override readonly brand: string = 'flowtag.devserver.error'
  declare readonly code: DevServerErrorCode

  constructor (code: DevServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/** A request Nacos would refuse: carries the status and the body Nacos answers with. */
export class HttpAnswer extends Error {
  readonly status: number
  readonly body: string
  readonly contentType: string
  constructor (status: number, body: string, contentType = 'text/plain;charset=UTF-8') {
    super(body)
    this.status = status
    this.body = body
    this.contentType = contentType
  }
}
