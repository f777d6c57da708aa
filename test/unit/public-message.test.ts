import { describe, expect, it } from 'vitest';
import { publicMessage } from '../../src/http/public-message.js';

describe('publicMessage', () => {
  it('takes host addresses and file paths out of a message', () => {
    expect(publicMessage('database unavailable: connect ECONNREFUSED 127.0.0.1:5432')).toBe(
      'database unavailable: connect ECONNREFUSED [address]',
    );
    expect(publicMessage('connect ECONNREFUSED [::1]:5432')).toBe('connect ECONNREFUSED [address]');
    expect(publicMessage('getaddrinfo ENOTFOUND db.internal')).toBe('getaddrinfo ENOTFOUND [address]');
    expect(publicMessage('connect ETIMEDOUT db-1.prod.example.com:6379')).toBe('connect ETIMEDOUT [address]');
    expect(publicMessage("ENOSPC: no space left on device, write '/var/lib/hypersync/wal/000001.log'")).toBe(
      "ENOSPC: no space left on device, write '[path]'",
    );
    expect(publicMessage('connect ENOENT /var/run/postgresql/.s.PGSQL.5432')).toBe('connect ENOENT [path]');
  });

  it('leaves what names the request alone', () => {
    for (const m of [
      'collection docs failed to load',
      'job 17 did not finish within 3000 ms',
      'no item "a/b/c" in docs',
      'k must be ≤ 1024',
    ])
      expect(publicMessage(m)).toBe(m);
  });
});
