// Builds the CUDA search kernel (kernels/cuda) with nvcc: the N-API addon
// (build/Release/hypersync_cuda.node) and the standalone check and benchmark (build/check).
// nvcc drives the whole build (no node-gyp: the GPU machines it must also build on have no npm).
// The CUDA runtime is linked statically and cuBLAS is loaded at run time, so the addon builds
// and loads where there is no GPU, no driver and no cuBLAS, and says so when probed.
// Where nvcc is missing or the build fails, the reason goes to kernels/cuda/build/UNAVAILABLE
// and the command still succeeds (`npm ci` must not fail for it); HYPERSYNC_REQUIRE_CUDA=1 turns
// that into a failure.
//   --force              rebuild even when the build is newer than the sources
//   --node-include=DIR   folder holding node_api.h (default: this Node's own headers)
// HYPERSYNC_CUDA_ARCH: compute capabilities to build SASS for, e.g. "90" (default) or "80,90";
// PTX of the highest is embedded too, so newer GPUs JIT it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'kernels', 'cuda');
const build = join(dir, 'build');
const marker = join(build, 'UNAVAILABLE');
const addon = join(build, 'Release', 'hypersync_cuda.node');
const check = join(build, 'check');
const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

function unavailable(reason) {
  mkdirSync(build, { recursive: true });
  writeFileSync(marker, `${reason}\n`);
  console.error(`[build:cuda] CUDA kernel not built: ${reason}`);
  process.exit(process.env.HYPERSYNC_REQUIRE_CUDA === '1' ? 1 : 0);
}

const library = [
  join(dir, 'src', 'cublas-api.cc'),
  join(dir, 'src', 'probe.cu'),
  join(dir, 'src', 'engine.cu'),
  join(dir, 'src', 'topk.cu'),
];
const sources = readdirSync(join(dir, 'src')).map((f) => join(dir, 'src', f));
const checkSources = ['check.cu', 'bench.cu'].map((f) => join(dir, 'test', f));

if (existsSync(addon) && existsSync(check) && !process.argv.includes('--force')) {
  const built = Math.min(statSync(addon).mtimeMs, statSync(check).mtimeMs);
  if (
    [...sources, ...checkSources, join(dir, 'test', 'check.h'), fileURLToPath(import.meta.url)].every(
      (f) => statSync(f).mtimeMs <= built,
    )
  )
    process.exit(0);
}

function findNvcc() {
  const dirs = [
    ...(process.env.CUDA_HOME ? [join(process.env.CUDA_HOME, 'bin')] : []),
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/cuda/bin',
  ];
  return dirs.map((d) => join(d, 'nvcc')).find((p) => existsSync(p));
}

const nvcc = findNvcc();
if (!nvcc) unavailable('nvcc not found (install the CUDA toolkit, or set CUDA_HOME)');
const version = spawnSync(nvcc, ['--version'], { encoding: 'utf8' });
if (version.status !== 0) unavailable(`${nvcc} --version failed: ${(version.stderr ?? '').trim()}`);
const release = /release ([\d.]+)/.exec(version.stdout)?.[1] ?? 'unknown';

const given = arg('node-include');
const nodeInclude =
  (given && resolve(given)) ??
  [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(dirname(process.execPath)), 'include', 'node'),
    '/usr/include/node',
  ].find((p) => p && existsSync(join(p, 'node_api.h')));
if (!nodeInclude || !existsSync(join(nodeInclude, 'node_api.h'))) unavailable('Node headers (node_api.h) not found');
let addonApi;
try {
  addonApi = dirname(createRequire(join(root, 'package.json')).resolve('node-addon-api/napi.h'));
} catch {
  unavailable('node-addon-api not installed (a devDependency)');
}

const archs = (process.env.HYPERSYNC_CUDA_ARCH ?? '90').split(/[,; ]+/).filter(Boolean);
const gencode = [
  ...archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]),
  '-gencode',
  `arch=compute_${archs.at(-1)},code=compute_${archs.at(-1)}`,
];
const common = ['-O3', '-std=c++17', '-Xcompiler', '-fPIC,-Wall', ...gencode];
const objDir = join(build, 'obj');
rmSync(marker, { force: true });
mkdirSync(objDir, { recursive: true });
mkdirSync(dirname(addon), { recursive: true });

const started = Date.now();
function run(args) {
  return new Promise((resolve) => {
    const child = spawn(nvcc, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.on('data', (d) => (err += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ ok: false, err: e.message }));
    child.on('close', (code) => resolve({ ok: code === 0, err }));
  });
}

async function compileAll(jobs) {
  const out = [];
  const queue = [...jobs];
  const width = Math.max(1, Math.min(availableParallelism(), queue.length));
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) out.push({ job, ...(await run(job.args)) });
    }),
  );
  return out;
}

const obj = (src) => join(objDir, `${src.split('/').at(-1)}.o`);
const compileJobs = [
  ...library.map((src) => ({ src, args: [...common, '-c', src, '-o', obj(src)] })),
  {
    src: join(dir, 'src', 'addon.cc'),
    args: [
      ...common,
      '-DNAPI_VERSION=8',
      '-DNAPI_DISABLE_CPP_EXCEPTIONS',
      `-I${nodeInclude}`,
      `-I${addonApi}`,
      '-c',
      join(dir, 'src', 'addon.cc'),
      '-o',
      obj(join(dir, 'src', 'addon.cc')),
    ],
  },
  ...checkSources.map((src) => ({ src, args: [...common, `-I${join(dir, 'src')}`, '-c', src, '-o', obj(src)] })),
];
const results = await compileAll(compileJobs);
const failed = results.find((r) => !r.ok);
if (failed) {
  process.stderr.write(failed.err);
  const line = failed.err.split('\n').find((l) => /error/i.test(l)) ?? `nvcc failed on ${failed.job.src}`;
  unavailable(line.trim());
}
const libs = ['--cudart', 'static', '-ldl', '-lpthread', '-lrt'];
const linkAddon = await run([
  '-shared',
  ...gencode,
  '-o',
  addon,
  ...library.map(obj),
  obj(join(dir, 'src', 'addon.cc')),
  ...libs,
]);
if (!linkAddon.ok) {
  process.stderr.write(linkAddon.err);
  unavailable(`linking the addon failed: ${linkAddon.err.trim().split('\n').at(-1)}`);
}
const linkCheck = await run([...gencode, '-o', check, ...library.map(obj), ...checkSources.map(obj), ...libs]);
if (!linkCheck.ok) {
  process.stderr.write(linkCheck.err);
  unavailable(`linking the check failed: ${linkCheck.err.trim().split('\n').at(-1)}`);
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
writeFileSync(
  join(build, 'BUILD_INFO'),
  `nvcc ${release}; sm_${archs.join(', sm_')} + PTX compute_${archs.at(-1)}; cudart static; ${seconds} s\n`,
);
console.error(`[build:cuda] built ${addon} and ${check} with nvcc ${release} in ${seconds} s`);
