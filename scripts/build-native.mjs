// Builds the native IVF kernel (kernels/native) with node-gyp against this Node's headers.
// A machine without a C++ toolchain still runs hypersync: the build failure is written to
// kernels/native/build/UNAVAILABLE and the HVS searches exactly only (no IVF), saying why in its
// stats. HYPERSYNC_REQUIRE_NATIVE=1 (CI) turns a failed build into a failed command.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'kernels', 'native');
const marker = join(dir, 'build', 'UNAVAILABLE');

// npm hands scripts the path of its own node-gyp; outside npm, look beside the npm install.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && existsSync(p));

function unavailable(reason) {
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, `${reason}\n`);
  console.error(`[build:native] native IVF kernel not built: ${reason}`);
  process.exit(process.env.HYPERSYNC_REQUIRE_NATIVE === '1' ? 1 : 0);
}

// Built already and no source newer (npm pack and npm ci run this through `prepare`): nothing to do.
const addon = join(dir, 'build', 'Release', 'hypersync_ivf.node');
if (existsSync(addon) && !process.argv.includes('--force')) {
  const built = statSync(addon).mtimeMs;
  const sources = [join(dir, 'binding.gyp'), ...readdirSync(join(dir, 'src')).map((f) => join(dir, 'src', f))];
  if (sources.every((f) => statSync(f).mtimeMs <= built)) process.exit(0);
}
if (candidates.length === 0) unavailable('node-gyp not found (it ships with npm)');
rmSync(marker, { force: true });
// Node's own headers where this Node was installed with them (Debian's nodejs: /usr/include/node),
// so node-gyp does not try to download them; npm's `nodedir` setting, when set, wins.
const prefix = dirname(dirname(process.execPath));
const nodedir =
  process.env.npm_config_nodedir ?? (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const args = [candidates[0], 'rebuild', '--release', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, {
  cwd: dir,
  stdio: ['ignore', 2, 'pipe'],
  encoding: 'utf8',
});
if (r.status !== 0) {
  process.stderr.write(r.stderr ?? '');
  const line = (r.stderr ?? '').split('\n').find((l) => /error/i.test(l)) ?? `node-gyp exited with ${r.status}`;
  unavailable(line.trim());
}
console.error('[build:native] built kernels/native/build/Release/hypersync_ivf.node');
