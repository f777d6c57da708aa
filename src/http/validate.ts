import type { z } from 'zod';
import { InvalidArgumentError } from '../core/errors.js';

/** Parses a request part with its schema; a mismatch is a 400 listing every problem by path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${[what, ...i.path.map(String)].join('.')}: ${i.message}`);
  throw new InvalidArgumentError(issues.join('; '), { details: { issues } });
}
