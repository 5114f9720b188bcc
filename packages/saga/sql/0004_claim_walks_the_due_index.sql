-- 0004: workers claim due instances by walking the due index, whatever the statistics say.
--
-- A claim takes the first N due instances in due order. The planner chooses between walking
-- saga_instances_due_idx in order and stopping after N rows, or fetching every due row and
-- sorting them; which looks cheaper depends on its estimate of the due rows. A plan made while
-- the table was small (cached for the claim's prepared statement after five calls, on every
-- pooled connection of a worker started on a young database) fetched and sorted every due
-- instance on every claim: with 100,000 due after an outage, 123 ms and a sort spilled to disk
-- per claim of 16, when a backlog is exactly when claims must be quick.
--
-- Walking the index is never worse by more than a claim's worth of rows, so the due instances
-- are selected by a function that turns the sort off while it is planned. It locks what it
-- returns (FOR UPDATE SKIP LOCKED, as before) and runs as the caller. PL/pgSQL rather than SQL
-- because it keeps its plan between calls (a SQL function with a SET clause is planned on every call).
create function {{schema}}.due_instances(
  due_by timestamptz, names text[], versions integer[], max_rows integer
) returns setof text
language plpgsql volatile
set enable_sort = off
as $$
begin
  return query
    select i.saga_id from {{schema}}.saga_instances as i
     where i.due_at <= due_by
       and (i.saga_name, i.saga_version) in (select * from unnest(names, versions))
     order by i.due_at
     limit max_rows
     for update skip locked;
end;
$$;

grant execute on function {{schema}}.due_instances(timestamptz, text[], integer[], integer)
  to {{app_role}};
