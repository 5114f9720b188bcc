import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertTopic, assertTopicPattern, matchesTopic } from './topicPattern.js';

describe('topic patterns', () => {
  it.each([
    ['ClaimSubmitted', 'ClaimSubmitted', true],
    ['ClaimSubmitted', 'ClaimDenied', false],
    ['billing.*', 'billing.ClaimSubmitted', true],
    ['billing.*', 'billing', false],
    ['billing.*', 'billing.claims.ClaimSubmitted', false],
    ['billing.#', 'billing', true],
    ['billing.#', 'billing.claims.ClaimSubmitted', true],
    ['#', 'anything.at.all', true],
    ['#.ClaimSubmitted', 'ClaimSubmitted', true],
    ['*.ClaimSubmitted', 'ClaimSubmitted', false],
    ['a.#.z', 'a.z', true],
    ['a.#.z', 'a.b.c.z', true],
    ['a.#.z', 'a.b.c', false],
  ])('matches %s against %s as AMQP does: %s', (pattern, topic, expected) => {
    expect(matchesTopic(pattern, topic)).toBe(expected);
  });

  it('accepts event types and dotted names as topics', () => {
    expect(assertTopic('ClaimSubmitted')).toBe('ClaimSubmitted');
    expect(assertTopic('billing.claim:submitted')).toBe('billing.claim:submitted');
  });

  it.each(['', 'a b', 'a..b', '.a', 'a.', 'a.*', 'x'.repeat(256)])(
    'refuses the topic %j without echoing it',
    (topic) => {
      expect(() => assertTopic(topic)).toThrow(/dot-separated words/);
    },
  );

  it('accepts a topic exactly when each of its dot-separated words is 1-128 allowed characters', () => {
    const wordOk = (w: string) => /^[A-Za-z0-9_:-]{1,128}$/.test(w);
    fc.assert(
      fc.property(
        fc
          .array(
            fc.oneof(
              // Short words, some with characters a topic may not hold, some empty.
              fc.string({ unit: fc.constantFrom('a', 'Z', '0', '_', ':', '-', '*', ' ', 'é') }),
              // Words around the 128-character limit.
              fc.string({ unit: fc.constantFrom('a', '-'), minLength: 125, maxLength: 131 }),
            ),
            { minLength: 1, maxLength: 3 },
          )
          .map((words) => words.join('.')),
        (topic) => {
          const valid = topic.length >= 1 && topic.length <= 255 && topic.split('.').every(wordOk);
          let accepted = true;
          try {
            assertTopic(topic);
          } catch {
            accepted = false;
          }
          expect(accepted).toBe(valid);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accepts wildcards only in subscription patterns', () => {
    expect(assertTopicPattern('billing.*.#')).toBe('billing.*.#');
    expect(() => assertTopicPattern('billing.**')).toThrow(/topic patterns/);
  });
});
