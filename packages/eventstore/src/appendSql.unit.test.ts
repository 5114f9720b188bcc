import { describe, expect, it } from 'vitest';
import { appendGroupStatement, appendParameterCount, appendStatement } from './appendSql.js';

const parameters = (text: string) => [...text.matchAll(/\$(\d+)\b/g)].map((m) => Number(m[1]));

describe('a group append statement', () => {
  it('numbers each member’s parameters after the ones before it', () => {
    const count = appendParameterCount('version', 'many');
    const text = appendGroupStatement('"evident"', 'version', 'many', 3);
    expect(Math.min(...parameters(text))).toBe(1);
    expect(Math.max(...parameters(text))).toBe(3 * count);
    expect(new Set(parameters(text)).size).toBe(3 * count);
  });

  it('is each member’s single append under names of its own, its rows marked with its index', () => {
    const single = appendStatement('"evident"', 'no_stream', 'one', true, true);
    const text = appendGroupStatement('"evident"', 'no_stream', 'one', 2, true, true);
    for (const i of [0, 1]) {
      expect(text).toContain(`tenant_${i} as materialized`);
      expect(text).toContain(`claimed_${i} as (`);
      expect(text).toContain(`inserted_${i} as (insert into "evident".events`);
      expect(text).toContain(`returning ${i} as member, stream_version,`);
    }
    expect(text).toContain('select * from inserted_0\n  union all select * from inserted_1');
    // Nothing of the single statement is lost but its names: as many calls of each function.
    const calls = (t: string) => t.match(/"evident"\.\w+\(/g)?.sort();
    expect(calls(text)).toEqual([...calls(single)!, ...calls(single)!].sort());
  });

  it('leaves a schema alone that shares a name with a part of the statement', () => {
    const text = appendGroupStatement('"docs"', 'version', 'many', 2);
    expect(text).toContain('insert into "docs".events');
    expect(text).toContain('update "docs".streams');
    expect(text).not.toContain('"docs_');
    expect(text).toContain('from docs_1 as d');
  });
});
