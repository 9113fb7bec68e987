/**
 * A progress line ("waiting for peers to meet: 4/6"). On a terminal it is redrawn in place with
 * `\r`; anywhere else (a pipe, a log file, CI) a `\r` would leave one long garbled line, so each
 * new state is a line of its own, and a state that did not change is not repeated.
 */
export interface Progress {
  update: (text: string) => void
  /** End the progress line (on a terminal, move past it). */
  done: () => void
}

export function progressLine (write: (text: string) => void, isTTY: boolean): Progress {
  let last: string | undefined
  return {
    update (text) {
      if (text === last) return
      last = text
      // ESC [ K clears what a longer previous state left to the right.
      write(isTTY ? `\r${text}\u001b[K` : `${text}\n`)
    },
    done () {
      if (isTTY && last !== undefined) write('\n')
      last = undefined
    }
  }
}
