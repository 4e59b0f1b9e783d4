// One message format for a bad option in every package:
//   <package>: invalid option "<field.path>": <what is wrong>

/** The structural part of a zod (v3 or v4) error that the message needs. */
export interface IssueList {
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string, code?: string, keys?: ReadonlyArray<string> }>
}

/** `"<field>": <problem>` as the shared wording, for errors built by hand. */
export function badOptionMessage (pkg: string, field: string, problem: string): string {
  return `${pkg}: invalid option "${field}": ${problem}`
}

/**
 * The field path of a zod error's first issue, joined with dots (an unknown key is named
 * itself, not its parent); `prefix` is put in front, e.g. `nacos` for nested options.
 */
export function fieldOf (error: IssueList, prefix?: string): string {
  const issue = error.issues[0]
  const path = issue === undefined ? [] : issue.path.map(String)
  if (issue?.code === 'unrecognized_keys' && issue.keys?.[0] !== undefined) path.push(issue.keys[0])
  const parts = [...(prefix === undefined || prefix === '' ? [] : [prefix]), ...path]
  return parts.length === 0 ? 'options' : parts.join('.')
}

/**
 * The message for invalid options from a zod error: names the first bad field and what is
 * wrong with it. Each package wraps it in its own error class and `BAD_OPTION` code.
 */
export function optionErrorMessage (pkg: string, error: IssueList, prefix?: string): string {
  return badOptionMessage(pkg, fieldOf(error, prefix), error.issues[0]?.message ?? 'invalid')
}
