import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // onnxruntime sessions use every core; files in parallel would only fight over two of them.
    fileParallelism: false,
    reporters: ['default'],
  },
});
