import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreLockedError } from '../../src/core/errors.js';
import { SqlNvmStore } from '../../src/nvm/sql-nvm-store.js';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nvm-lock-'));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Runs a child process that opens the embedded store in `dir` and prints what happened. */
function openInChild(dir: string): Promise<string> {
  const script = `
    import { SqlNvmStore } from './src/nvm/sql-nvm-store.ts';
    try { const s = await SqlNvmStore.open({ dataDir: ${JSON.stringify(dir)} }); console.log('opened'); await s.close(); }
    catch (e) { console.log(e.name + ': ' + e.message); }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(out.trim()));
  });
}

describe('the embedded NVM locks its data directory', () => {
  it('a second store, in this process or another, gets a clear error; after close it opens', async () => {
    const first = await SqlNvmStore.open({ dataDir });
    try {
      const again = await SqlNvmStore.open({ dataDir }).catch((e: unknown) => e);
      expect(again).toBeInstanceOf(StoreLockedError);
      expect((again as Error).message).toMatch(/in use by process \d+ \(this one\)/);
      expect(await openInChild(dataDir)).toMatch(/^StoreLockedError: .*in use by process \d+.*set DATABASE_URL/);
    } finally {
      await first.close();
    }
    expect(await openInChild(dataDir)).toBe('opened');
  });

  it('a lock left by a process that died is taken over', async () => {
    const dead = spawn(process.execPath, ['-e', '0']);
    const pid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    await mkdir(join(dataDir, 'nvm'), { recursive: true });
    await writeFile(join(dataDir, 'nvm', 'hypersync.lock'), `${pid}\n`);
    const store = await SqlNvmStore.open({ dataDir });
    await store.close();
  });
});
