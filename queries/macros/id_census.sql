-- id_census(source_table): one row for the whole of a lake dataset: its records, their distinct ids and the id hashes it holds more than once
-- An id is one record per account (the same id in two accounts is two records), so an "id hash"
-- is hash(account, id) throughout. The one census of every id in a dataset, read by two models: the dedupe (latest_repeats
-- swaps in the latest version at the instants of the repeated hashes) and the unique-id test
-- (missing_or_repeated_ids: the staged records must hold as many ids as the lake holds
-- distinct ones, with the same sum of id hashes). 8-byte hashes are counted much faster than
-- the id strings; a collision only adds a hash to re-check (the dedupe and the test compare the
-- ids themselves), it never hides a repeat. The distinct hashes are counted, not grouped (a
-- distinct count is cheaper than a grouping with a count per hash); the ids are grouped only
-- when some hash is held more than once, to name those hashes: DuckDB skips that part when
-- none is.
create macro id_census(source_table) as table
with source as not materialized (
    select account, id from query_table(source_table)
),

fingerprint as (
    select
        count(*) as records,
        count(id) as ids,
        count(distinct hash(account, id)) filter (where id is not null) as distinct_id_hashes,
        -- every version counted here; the surplus of the repeated hashes is taken off below
        coalesce(sum(hash(account, id)) filter (where id is not null), 0)::hugeint as id_hash_total,
    from source
),

repeated as (
    select
        hash(source.account, source.id) as id_hash,
        count(*) as versions,
    from source
    semi join fingerprint on fingerprint.ids > fingerprint.distinct_id_hashes
    where source.id is not null
    group by id_hash
    having count(*) > 1
),

surplus as (
    select
        coalesce(sum(id_hash::hugeint * (versions - 1)), 0) as id_hash_surplus,
        coalesce(list(id_hash order by id_hash), []) as repeated_id_hashes,
    from repeated
),

final as (
    select
        fingerprint.records::bigint as records,
        fingerprint.distinct_id_hashes::bigint as distinct_id_hashes,
        (fingerprint.id_hash_total - surplus.id_hash_surplus)::hugeint as id_hash_sum,
        surplus.repeated_id_hashes,
    from fingerprint
    cross join surplus
)

select * from final
