/**
 * Text other peers control (a peer's version, an error message it sent, a log field) printed to a
 * terminal: control characters would be obeyed, not shown — an escape sequence can move the
 * cursor, rewrite earlier lines or set the window title. Each is shown as a visible escape instead
 * (`\n`, `\x1b`, `\u009b`); tabs are kept. JSON output needs none of this: JSON escapes them.
 */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g

/** Line feed and carriage return shown as the letters their escapes use; the rest by code. */
const NAMED: Readonly<Record<number, string>> = { 0x0a: 'n', 0x0d: 'r' }

export function printable (text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0)
    const named = NAMED[code]
    if (named !== undefined) return `\\${named}`
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}
