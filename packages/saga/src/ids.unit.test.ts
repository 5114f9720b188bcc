import { describe, expect, it } from 'vitest';
import { uuidFromKey } from './index.js';

describe('uuidFromKey', () => {
  it('gives a step the same UUID on every retry, and another step another one', () => {
    const key = 'saga/onb-81/assignCareCoordinator';
    expect(uuidFromKey(key)).toBe(uuidFromKey(key));
    expect(uuidFromKey(key)).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(uuidFromKey(`${key}/compensate`)).not.toBe(uuidFromKey(key));
  });
});
