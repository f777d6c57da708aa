import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { HashingEncoder } from '../../src/encoder/hashing-encoder.js';
import { Service } from '../../src/service.js';
import { LIMITS } from '../../src/core/limits.js';

let dataDir: string;
let svc: Service;
let base: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'http-enc-'));
  svc = await Service.start(
    loadConfig({
      HYPERSYNC_PORT: '0',
      HYPERSYNC_HOST: '127.0.0.1',
      HYPERSYNC_DATA_DIR: dataDir,
      HYPERSYNC_API_KEYS: 'key-one,key-two',
    }),
    pino({ level: 'silent' }),
  );
  base = `http://127.0.0.1:${svc.port}`;
});
afterAll(async () => {
  await svc.close();
  await rm(dataDir, { recursive: true, force: true });
});

const post = (path: string, body: string, key?: string): Promise<Response> =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body,
  });

describe('POST /v1/encode behind API keys', () => {
  it('encodes with the default (hashing) encoder for a valid key', async () => {
    const res = await post('/v1/encode', JSON.stringify({ texts: ['hello world', 'vector search'] }), 'key-two');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { dim: number; vectors: number[][]; encoder: { name: string; version: string } };
    expect(body.dim).toBe(384);
    expect(body.encoder.name).toBe('hashing');
    expect(body.vectors).toHaveLength(2);
    const want = await new HashingEncoder({ dim: 384 }).encode(['hello world']);
    expect(body.vectors[0]).toEqual([...want[0]]);
  });

  it('answers missing and wrong keys with 401; health stays open', async () => {
    for (const key of [undefined, 'key-three', 'key-one-and-more']) {
      const res = await post('/v1/encode', JSON.stringify({ texts: ['x'] }), key);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('unauthorized');
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('answers bad input with 400 and a message, never a 5xx', async () => {
    const cases = [
      '{"texts": "not a list"}',
      '{"texts": []}',
      '{"texts": [1, 2]}',
      '{"texts": [null]}',
      '{"texts": [""]}',
      '{"texts": ["a"], "extra": 1}',
      '{"texts": ["a"], "encoder": "no-such-encoder"}',
      '{"texts": ["a"',
      'null',
    ];
    for (const body of cases) {
      const res = await post('/v1/encode', body, 'key-one');
      expect(res.status, body).toBe(400);
      const json = (await res.json()) as { error: { message: string } };
      expect(json.error.message.length, body).toBeGreaterThan(0);
    }
    const tooMany = await post(
      '/v1/encode',
      JSON.stringify({ texts: Array.from({ length: LIMITS.textsPerCall + 1 }, () => 'a') }),
      'key-one',
    );
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { error: { message: string } }).error.message).toMatch(/texts per request/);
  });
});
