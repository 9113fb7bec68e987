/**
 * Building the page without a framework: `h` makes HTML elements, `svg` SVG ones. Text goes in
 * as text nodes, never as markup, so nothing a peer reports (ids, error messages) can inject
 * markup into the page.
 */
type Child = Node | string | number | undefined | false
type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>

const SVG_NS = 'http://www.w3.org/2000/svg'

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  fill(el, attrs, children)
  return el
}

export function svg<K extends keyof SVGElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag)
  fill(el, attrs, children)
  return el
}

function fill (el: Element, attrs: Attrs, children: Child[]): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children) {
    if (child === undefined || child === false) continue
    el.append(typeof child === 'object' ? child : document.createTextNode(String(child)))
  }
}

/** Replace an element's children. */
export function replace (el: Element, ...children: Child[]): void {
  el.replaceChildren()
  fill(el, {}, children)
}

/** The last characters of a peer or task id: enough to tell them apart on screen. */
export function shortId (id: string | undefined, chars = 6): string {
  if (id === undefined) return '—'
  return id.length <= chars + 1 ? id : `…${id.slice(-chars)}`
}

export function formatMs (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${s % 60} s`
}

/** An empty state or an error inside a panel: what is (not) there, and what to do. */
export function notice (kind: 'empty' | 'loading' | 'error', text: string, hint?: string): HTMLElement {
  return h('div', { class: `notice notice-${kind}` }, h('p', {}, text), hint === undefined ? undefined : h('p', { class: 'hint' }, hint))
}

/** Colors that tell peers apart on a dark background (the Tableau 10 hues, lightened). */
const PEER_COLORS = ['#6cb4ff', '#ffb561', '#ff7b7b', '#7fe0d8', '#8ee27a', '#f6d860', '#d49bff', '#ff9fcf', '#c9a78a', '#c8d0da']

/** The color of the `index`-th peer of a run (RunModel.peers()). */
export function peerColor (index: number): string {
  return PEER_COLORS[index % PEER_COLORS.length]
}
