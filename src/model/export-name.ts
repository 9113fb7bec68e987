/**
 * The one rule for export names, shared by function manifests (what may be deployed) and the task
 * protocol (what may be called). Two rules would let a manifest list an export no task could ever
 * name. An export name is an ASCII JavaScript identifier: it is typed on command lines, printed in
 * terminals and logs, and compared byte for byte, so no look-alike, control, bidi or zero-width
 * characters can hide in one.
 */

/** Longest export name, in characters: long enough for any real identifier, short enough to print. */
export const EXPORT_NAME_LENGTH_MAX = 128

/** An ASCII JavaScript identifier of 1 to EXPORT_NAME_LENGTH_MAX characters. */
export const EXPORT_NAME = new RegExp(`^[A-Za-z_$][A-Za-z0-9_$]{0,${EXPORT_NAME_LENGTH_MAX - 1}}$`)

export function isExportName (name: unknown): boolean {
  return typeof name === 'string' && EXPORT_NAME.test(name)
}

/** Why `name` is not an export name, for messages; undefined when it is one. */
export function exportNameProblem (name: unknown): string | undefined {
  if (typeof name !== 'string') return 'must be a string'
  if (EXPORT_NAME.test(name)) return undefined
  if (name.length === 0 || name.length > EXPORT_NAME_LENGTH_MAX) return `must be 1 to ${EXPORT_NAME_LENGTH_MAX} characters`
  return `${JSON.stringify(name)} is not an identifier: letters A-Z a-z, digits, "_" and "$", not starting with a digit`
}

/**
 * Characters a human-readable label (a function name) must not hold: C0 and C1 controls and DEL
 * (they move the terminal's cursor or change its state), bidi controls (they reorder what is shown,
 * e.g. U+202E), zero-width and invisible characters (two names that look equal would differ), and
 * line and paragraph separators.
 */
export const HIDDEN_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/u
