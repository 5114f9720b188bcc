import { InvalidArgumentError } from '@evident/envelope';

const word = /^[A-Za-z0-9_:-]{1,128}$/;
// The same rule for a whole topic in one pass: every publish checks its topic, and splitting it
// into words first allocated an array and a string per word.
const topicPattern = /^[A-Za-z0-9_:-]{1,128}(?:\.[A-Za-z0-9_:-]{1,128})*$/;
const maxTopicLength = 255;

/**
 * Check a topic to publish to: words of letters, digits, `_`, `:` or `-` separated by dots, at
 * most 255 characters (RabbitMQ's routing-key limit). Event types such as `ClaimSubmitted` and
 * `billing.ClaimSubmitted` are valid topics.
 *
 * @throws InvalidArgumentError naming the rule, never the value.
 */
export function assertTopic(topic: unknown): string {
  if (
    typeof topic !== 'string' ||
    topic.length === 0 ||
    topic.length > maxTopicLength ||
    !topicPattern.test(topic)
  ) {
    throw new InvalidArgumentError(
      `topic must be 1-${maxTopicLength} characters of dot-separated words (letters, digits, _ : -)`,
    );
  }
  return topic;
}

/**
 * Check a subscription's topic pattern: a topic whose words may also be `*` (exactly one word) or
 * `#` (zero or more words), as in AMQP topic exchanges.
 *
 * @throws InvalidArgumentError naming the rule, never the value.
 */
export function assertTopicPattern(pattern: unknown): string {
  if (
    typeof pattern !== 'string' ||
    pattern.length === 0 ||
    pattern.length > maxTopicLength ||
    !pattern.split('.').every((w) => w === '*' || w === '#' || word.test(w))
  ) {
    throw new InvalidArgumentError(
      `topic patterns must be 1-${maxTopicLength} characters of dot-separated words or * or #`,
    );
  }
  return pattern;
}

/** `true` when the pattern has a `*` or `#` word. */
export function isWildcardPattern(pattern: string): boolean {
  return pattern.split('.').some((w) => w === '*' || w === '#');
}

/**
 * Whether `topic` matches `pattern` with AMQP topic-exchange rules: `*` is exactly one word, `#`
 * zero or more words.
 *
 * @example
 * ```ts
 * matchesTopic('billing.#', 'billing.ClaimSubmitted'); // true
 * matchesTopic('*.ClaimSubmitted', 'ClaimSubmitted'); // false
 * ```
 */
export function matchesTopic(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  // reachable[j]: pattern words so far can consume exactly the first j topic words.
  let reachable = new Array<boolean>(t.length + 1).fill(false);
  reachable[0] = true;
  for (const w of p) {
    const next = new Array<boolean>(t.length + 1).fill(false);
    for (let j = 0; j <= t.length; j++) {
      if (!reachable[j]) continue;
      if (w === '#') {
        for (let k = j; k <= t.length; k++) next[k] = true;
        break;
      }
      if (j < t.length && (w === '*' || w === t[j])) next[j + 1] = true;
    }
    reachable = next;
  }
  return reachable[t.length] === true;
}
