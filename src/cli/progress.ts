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

/**
 * A block of progress lines (a bar and a line per peer). On a terminal it is redrawn in place:
 * the cursor goes back up over the previous block, each line clears what a longer one left, and
 * ESC [ J clears the lines a taller block left below. Anywhere else each new state's lines are
 * written once, and a state that did not change is not repeated.
 */
export interface ProgressBlock {
  update: (lines: string[]) => void
  /** End the block (on a terminal, move past it). */
  done: () => void
}

export function progressBlock (write: (text: string) => void, isTTY: boolean): ProgressBlock {
  let last: string | undefined
  let height = 0
  return {
    update (lines) {
      const text = lines.join('\n')
      if (text === last) return
      last = text
      if (!isTTY) {
        write(`${text}\n`)
        return
      }
      const up = height > 1 ? `\u001b[${height - 1}A` : ''
      write(`${up}\r${lines.join('\u001b[K\n')}\u001b[K\u001b[J`)
      height = lines.length
    },
    done () {
      if (isTTY && last !== undefined) write('\n')
      last = undefined
      height = 0
    }
  }
}
