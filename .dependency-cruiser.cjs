// The layer rule (`npm run lint`): imports only point down.
//   src/cli, src/http, workers → src/jobs → src/integration → src/hvs | src/nvm | src/encoder → kernels → src/core
// src/index.ts, src/service.ts and src/config.ts sit on top. Tests and benches are not cruised.
// Beside them, src/client (hypersync/client) ← src/langchain (hypersync/langchain) talk to the service over HTTP only.
// Paths are as dependency-cruiser resolves them, relative to the repository root.

/** A project module outside `allowed` (folders or files, as regular expressions). */
const projectOutside = (...allowed) => ({
  path: '^(src|kernels|workers|test|bench|db|models)/',
  pathNot: `^(${allowed.join('|')})`,
});

// Lower layers take the validated environment's shape (`Config`) in their `...FromConfig` helpers,
// as a type only; reading the environment stays in src/config.ts (see `config-type-only`).
const CONFIG_TYPE = 'src/config\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes the layers meaningless and the load order fragile.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-imports-nothing',
      severity: 'error',
      comment: 'src/core is the shared domain: node: builtins and npm packages only.',
      from: { path: '^src/core/' },
      to: projectOutside('src/core/'),
    },
    {
      name: 'kernels-import-only-core',
      severity: 'error',
      from: { path: '^kernels/' },
      to: projectOutside('kernels/', 'src/core/'),
    },
    {
      name: 'hvs-imports-only-kernels-and-core',
      severity: 'error',
      comment: 'Siblings (hvs, nvm, encoder) never import each other; what they share lives in src/core.',
      from: { path: '^src/hvs/' },
      to: projectOutside('src/hvs/', 'kernels/', 'src/core/'),
    },
    {
      name: 'nvm-imports-only-kernels-and-core',
      severity: 'error',
      comment: 'Siblings (hvs, nvm, encoder) never import each other; what they share lives in src/core.',
      from: { path: '^src/nvm/' },
      to: projectOutside('src/nvm/', 'kernels/', 'src/core/'),
    },
    {
      name: 'encoder-imports-only-kernels-and-core',
      severity: 'error',
      comment: 'Siblings (hvs, nvm, encoder) never import each other; what they share lives in src/core.',
      from: { path: '^src/encoder/' },
      to: projectOutside('src/encoder/', 'kernels/', 'src/core/', CONFIG_TYPE),
    },
    {
      name: 'integration-imports-only-the-tiers-and-below',
      severity: 'error',
      from: { path: '^src/integration/' },
      to: projectOutside('src/integration/', 'src/hvs/', 'src/nvm/', 'src/encoder/', 'kernels/', 'src/core/', CONFIG_TYPE),
    },
    {
      name: 'jobs-import-only-integration-and-below',
      severity: 'error',
      comment: 'The job machinery never imports the processors (workers/); workers/from-config.ts wires them in.',
      from: { path: '^src/jobs/' },
      to: projectOutside(
        'src/jobs/',
        'src/integration/',
        'src/hvs/',
        'src/nvm/',
        'src/encoder/',
        'kernels/',
        'src/core/',
        CONFIG_TYPE,
      ),
    },
    {
      name: 'workers-import-only-jobs-and-below',
      severity: 'error',
      from: { path: '^workers/' },
      to: projectOutside(
        'workers/',
        'src/jobs/',
        'src/integration/',
        'src/hvs/',
        'src/nvm/',
        'src/encoder/',
        'kernels/',
        'src/core/',
        CONFIG_TYPE,
      ),
    },
    {
      name: 'http-imports-only-jobs-and-below-but-not-the-tiers',
      severity: 'error',
      comment: 'HTTP talks to HyperSync (src/integration) and the job queue, never to the HVS or the NVM directly.',
      from: { path: '^src/http/' },
      to: projectOutside('src/http/', 'src/jobs/', 'src/integration/', 'src/encoder/', 'kernels/', 'src/core/', CONFIG_TYPE),
    },
    {
      name: 'cli-imports-the-service-and-jobs-and-below',
      severity: 'error',
      comment: 'The CLI is an entry point: it may start the service (src/service.ts) and workers, not reach into HTTP.',
      from: { path: '^src/cli/' },
      to: projectOutside(
        'src/cli/',
        'src/service\\.ts$',
        'src/config\\.ts$',
        'workers/',
        'src/jobs/',
        'src/integration/',
        'src/hvs/',
        'src/nvm/',
        'src/encoder/',
        'kernels/',
        'src/core/',
      ),
    },
    {
      name: 'client-and-langchain-import-only-the-client',
      severity: 'error',
      comment:
        "hypersync/client and hypersync/langchain run in the caller's process against a service over HTTP: npm packages and src/client only, nothing of the server.",
      from: { path: '^src/(client|langchain)/' },
      to: projectOutside('src/client/', 'src/langchain/'),
    },
    {
      name: 'client-imports-no-langchain',
      severity: 'error',
      comment: 'hypersync/client works without @langchain/core: the adapter sits on the client, never under it.',
      from: { path: '^src/client/' },
      to: { path: '^src/langchain/|(^|/)node_modules/@langchain/' },
    },
    {
      name: 'config-type-only',
      severity: 'error',
      comment: 'process.env is read in src/config.ts, called by the entry points only; below, `Config` is a type.',
      from: { path: '^(src/(core|hvs|nvm|encoder|integration|jobs|http)|kernels|workers)/' },
      to: { path: '^src/config\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve fails at run time.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment: 'Shipped code may not import a devDependency: `npm install hypersync` does not install those.',
      from: { path: '^(src|kernels|workers)/' },
      // A package that is also an (optional) peer is the user's to install: @langchain/core for hypersync/langchain.
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only', 'npm-peer'] },
    },
    {
      name: 'no-non-package-json',
      severity: 'error',
      comment: 'Every npm package imported is declared in package.json.',
      from: {},
      // dependency-cruiser reads every package.json key containing "ependencies" as a dependency list, so
      // an optional peer (listed in peerDependenciesMeta too) is also tagged npm-no-pkg: a peer is declared.
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'], dependencyTypesNot: ['npm-peer'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
