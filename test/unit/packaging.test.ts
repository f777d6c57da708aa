import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('packaging', () => {
  it('declares the Node.js version the code needs: zlib.crc32 (segment files) came in 20.15', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    const m = /^>=(\d+)\.(\d+)/.exec(pkg.engines.node);
    expect(m, pkg.engines.node).not.toBeNull();
    const [major, minor] = [Number(m?.[1]), Number(m?.[2])];
    expect(major > 20 || (major === 20 && minor >= 15)).toBe(true);
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { engines?: { node: string } }>;
    };
    expect(lock.packages[''].engines?.node).toBe(pkg.engines.node);
  });

  it('keeps installed modules, builds, data and results out of the image build context', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', '.hypersync', '.git', 'bench/.cache', 'kernels/native/build', 'kernels/cuda/build'])
      expect(ignored).toContain(p);
  });
});
