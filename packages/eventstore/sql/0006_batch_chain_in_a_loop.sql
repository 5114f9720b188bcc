-- 0006: a batch's hash chain computed in one function call per pass, not one call per event.
--
-- The links are the ones 0004 defines (chain_link over content_hash); only how a batch computes
-- them changes. 0004's `chain` aggregate called its PL/pgSQL step function once per event, twice
-- per batch (the stream row's new last hash, then each event's own link), about 2 µs a call. A
-- loop inside one call costs a fraction of that per event: `chain_head` gives the batch's last
-- link (for the stream row), `chain_links` every link in order (for the events).

create function {{schema}}.chain_head(base bytea, first_version bigint, contents bytea[])
returns bytea
language plpgsql immutable parallel safe as $$
declare
  head bytea := coalesce(base, '\x'::bytea);
  version bigint := first_version;
  content bytea;
begin
  foreach content in array contents loop
    head := sha256(head || int8send(version) || content);
    version := version + 1;
  end loop;
  return head;
end;
$$;

create function {{schema}}.chain_links(base bytea, first_version bigint, contents bytea[])
returns bytea[]
language plpgsql immutable parallel safe as $$
declare
  head bytea := coalesce(base, '\x'::bytea);
  version bigint := first_version;
  content bytea;
  links bytea[] := '{}';
begin
  foreach content in array contents loop
    head := sha256(head || int8send(version) || content);
    links := links || head;
    version := version + 1;
  end loop;
  return links;
end;
$$;

grant execute on function {{schema}}.chain_head(bytea, bigint, bytea[]),
  {{schema}}.chain_links(bytea, bigint, bytea[])
  to {{app_role}}, {{auditor_role}};
