import pkg from '../../package.json' with { type: 'json' }

/** Rhizome's version, announced to peers and shown by `rhizome status`. */
export const VERSION: string = pkg.version
