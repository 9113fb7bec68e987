// Lint rules that keep the architecture honest (DESIGN.md §4, STYLE.md §3–4):
// imports point one way, and the protocol core and simulator are pure — no node:*, no libp2p,
// no clock, no randomness. Time and randomness come in as arguments.
import tseslint from 'typescript-eslint'

const layers = ['model', 'protocol', 'wire', 'store', 'sandbox', 'functions', 'net', 'api', 'node', 'sdk', 'analysis', 'check', 'cli', 'dashboard', 'sim']

/** Forbid relative imports of the named sibling folders of src/. */
function forbidLayers (...names) {
  return names.map(name => ({ group: [`**/${name}/**`, `../${name}`, `../${name}/*`], message: `imports point downward only (docs/ARCHITECTURE.md): this folder may not import src/${name}` }))
}

const io = [
  { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'http', 'crypto', 'child_process', 'worker_threads'], message: 'the pure core does no I/O: take what you need as an argument' },
  { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'isolated-vm', 'esbuild'], message: 'the pure core does not touch the network or the sandbox: the shell (src/net, src/node) does' }
]

const impure = {
  'no-restricted-globals': ['error',
    { name: 'Date', message: 'pure core: take nowMs as an argument' },
    { name: 'setTimeout', message: 'pure core: report nextTimeoutMs() and let the shell schedule' },
    { name: 'setInterval', message: 'pure core: report nextTimeoutMs() and let the shell schedule' },
    { name: 'performance', message: 'pure core: take nowMs as an argument' },
    { name: 'process', message: 'pure core: no process access' },
    { name: 'crypto', message: 'pure core: take randomness as an argument' },
    { name: 'fetch', message: 'pure core: no network' }
  ],
  'no-restricted-properties': ['error',
    { object: 'Math', property: 'random', message: 'pure core: take a seeded Random as an argument' }
  ]
}

export default tseslint.config(
  // Fixtures under a `bad/` folder are deliberately broken source for deploy-error tests.
  { ignores: ['node_modules/**', '.rhizome/**', 'dist/**', 'test/fixtures/**/bad/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'smart'],
      'no-var': 'error',
      'prefer-const': 'error'
    }
  },
  {
    files: ['src/model/**/*.ts'],
    rules: {
      ...impure,
      'no-restricted-imports': ['error', { patterns: [...io, ...forbidLayers(...layers.filter(l => l !== 'model'))] }]
    }
  },
  {
    files: ['src/protocol/**/*.ts'],
    rules: {
      ...impure,
      'no-restricted-imports': ['error', { patterns: [...io, ...forbidLayers('wire', 'store', 'sandbox', 'net', 'node', 'sdk', 'analysis', 'cli', 'dashboard', 'sim')] }]
    }
  },
  {
    files: ['src/sim/**/*.ts'],
    rules: {
      ...impure,
      'no-restricted-imports': ['error', { patterns: [...io, ...forbidLayers('store', 'sandbox', 'net', 'node', 'sdk', 'analysis', 'cli', 'dashboard')] }]
    }
  },
  {
    files: ['src/wire/**/*.ts'],
    rules: {
      ...impure,
      'no-restricted-imports': ['error', { patterns: [...io, ...forbidLayers('store', 'sandbox', 'net', 'node', 'sdk', 'analysis', 'cli', 'dashboard', 'sim')] }]
    }
  },
  {
    files: ['src/store/**/*.ts', 'src/sandbox/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: forbidLayers('protocol', 'net', 'node', 'sdk', 'analysis', 'cli', 'dashboard', 'sim') }]
    }
  },
  {
    files: ['src/net/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: forbidLayers('node', 'sdk', 'analysis', 'cli', 'dashboard', 'sim') }]
    }
  },
  {
    files: ['src/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: forbidLayers('sdk', 'analysis', 'cli', 'dashboard', 'sim') }]
    }
  },
  {
    // The API contract (routes, shapes, client) knows nothing of the peer's internals: a client
    // must not load libp2p, SQLite or the sandbox to talk to a peer.
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'isolated-vm', 'esbuild'], message: 'the API contract does not touch the network stack or the sandbox' },
        ...forbidLayers(...layers.filter(l => l !== 'model' && l !== 'api'))
      ] }]
    }
  },
  {
    // The SDK talks to a peer through its HTTP API.
    files: ['src/sdk/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: forbidLayers('protocol', 'wire', 'store', 'sandbox', 'net', 'sim') }]
    }
  },
  {
    // The dashboard runs in a browser and talks to its peer through the HTTP API: the API's
    // routes and shapes (src/api) and the model, nothing of the peer, nothing of Node.
    files: ['src/dashboard/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['node:*', 'libp2p', '@libp2p/*', '@chainsafe/*', 'isolated-vm', 'esbuild'], message: 'the dashboard runs in a browser: it reaches the peer through its HTTP API' },
        ...forbidLayers(...layers.filter(l => l !== 'model' && l !== 'api' && l !== 'dashboard'))
      ] }]
    }
  },
  {
    // The CLI talks to a peer through its HTTP API (src/api), bundles functions (src/functions)
    // and shares the model. The one way into the peer itself is the composition root that
    // `rhizome node start` boots, src/node/index.ts: no other file of src/node.
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        ...forbidLayers('store', 'sandbox', 'net', 'sim', 'sdk', 'analysis', 'dashboard'),
        { group: ['**/node/**', '!**/node/index.ts'], message: 'the CLI enters the peer only through src/node/index.ts; anything else comes through src/api' },
        // `rhizome network` is the admin's signing tool: it writes certificates and revocations in
        // the one wire format (pure code, no peer), and checks roles and validity by the same rules.
        { group: ['**/wire/**', '!**/wire/certificate-codec.ts'], message: 'the CLI may use only the credentials codec of src/wire' },
        { group: ['**/protocol/**', '!**/protocol/permission/', '!**/protocol/permission/constants.ts'], message: 'the CLI may use only the permission rules of src/protocol' }
      ] }]
    }
  },
  {
    // `rhizome check` reads workflow modules with the TypeScript parser: it shares the model
    // (errors) and nothing of the peer, so the CLI and the ESLint plugin can load it alone.
    files: ['src/check/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: forbidLayers(...layers.filter(l => l !== 'model' && l !== 'check')) }]
    }
  },
  {
    // A function longer than about 70 lines is usually two (STYLE.md §12). Blank lines and
    // comments do not count.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 70, skipBlankLines: true, skipComments: true }]
    }
  }
)
