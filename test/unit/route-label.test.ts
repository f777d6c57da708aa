import { describe, expect, it } from 'vitest';
import { routeLabel } from '../../src/http/metrics.js';

describe('routeLabel', () => {
  it('joins the mount point taken from the URL with the route template', () => {
    expect(routeLabel('/v1/collections/docs/items/a%2Fb?x=1', '/:c/items/:id')).toBe('/v1/collections/:c/items/:id');
    expect(routeLabel('/v1/collections/', '/')).toBe('/v1/collections');
    expect(routeLabel('/v1/collections', '/')).toBe('/v1/collections');
    expect(routeLabel('/v1/jobs/17', '/jobs/:id')).toBe('/v1/jobs/:id');
    expect(routeLabel('/metrics', '/metrics')).toBe('/metrics');
    expect(routeLabel('/nowhere', undefined)).toBe('unmatched');
    expect(routeLabel('/a', '/a/b/c')).toBe('unmatched');
  });
});
