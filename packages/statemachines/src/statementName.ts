import { createHash } from 'node:crypto';

/**
 * A name for a prepared statement derived from its text: node-postgres prepares it once per
 * connection, and two texts never share a name (a name reused with other text is an error).
 */
export function statementName(text: string): string {
  return `evident_sm_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
}
