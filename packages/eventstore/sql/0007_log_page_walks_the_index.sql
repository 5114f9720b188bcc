-- 0007: a page of the global log is always read by walking the log's index in order.
--
-- `readAll` (and every subscription and relay, which read through it) asks for the first N events
-- after a checkpoint. The planner chooses between walking events_log_idx in order and stopping
-- after N rows, or fetching every row after the checkpoint and sorting them. Which looks cheaper
-- depends on its estimate of the rows after the checkpoint, and that estimate is a guess whenever
-- the statistics are older than the log's growth: a plan made while the log was small (a generic
-- plan cached after five calls of a prepared statement, or a fresh plan before autovacuum has
-- analyzed the table) fetched and sorted all of them, on every page. A relay 20,000 events behind
-- read 500-event pages in 65-90 ms instead of about 1, and the cost grows with the backlog.
--
-- Walking the index is never worse by more than a page's worth of work, so the page is read by
-- a function that turns the sort off while it is planned: the planner has no other plan left.
-- It returns the table's rows; callers format the columns (see src/eventStore.ts). It runs as the
-- caller, so row-level security applies as before, and it is STABLE: it reads with the calling
-- statement's snapshot, the one the caller takes its horizon from. PL/pgSQL rather than SQL
-- because it keeps its plan between calls (a SQL function with a SET clause is planned on every
-- call): about 110 µs a call beside 180 in a loop of 3,000 on the test machine.
create function {{schema}}.log_page(
  after_transaction xid8, after_position bigint, max_rows integer, types text[], stream_types text[]
) returns setof {{schema}}.events
language plpgsql stable
set enable_sort = off
as $$
begin
  return query
    select * from {{schema}}.events as ev
     where (ev.transaction_id, ev.global_position) > (after_transaction, after_position)
       and (types is null or ev.event_type = any(types))
       and (stream_types is null or ev.stream_type = any(stream_types))
     order by ev.transaction_id, ev.global_position
     limit max_rows;
end;
$$;

grant execute on function {{schema}}.log_page(xid8, bigint, integer, text[], text[])
  to {{app_role}}, {{auditor_role}};
