import { createHash } from 'node:crypto';

/** A stable prepared-statement name for a SQL text (node-postgres prepares it once per connection). */
export function statementName(text: string): string {
  return `evident_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
}
