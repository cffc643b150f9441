-- id_census(hashes_table): one row per UTC day of a lake dataset: its records, their distinct ids and the (account, id) hashes held more than once that it holds
-- Counted from the dataset's id index (macros/id_hashes.sql). Read by two models: the dedupe
-- (latest_repeats swaps in the latest version at the instants of the repeated hashes) and the
-- unique-id test (missing_or_repeated_ids: the staged records must hold as many ids as the lake
-- holds distinct ones, with the same sum of id hashes). A day's distinct ids are those it holds
-- first: an id held by two days counts on the earlier one only, so the days add up to the lake's.
-- 8-byte hashes are counted much faster than the id strings; a collision only adds a hash to
-- re-check (the dedupe and the test compare the ids themselves), it never hides a repeat.
create macro id_census(hashes_table) as table
with hashes as not materialized (
    select utc_date, id_hash from query_table(hashes_table)
),

days as (
    select
        utc_date,
        count(*) as records,
        count(id_hash) as ids,
        coalesce(sum(id_hash), 0)::hugeint as id_hash_total,
    from hashes
    group by utc_date
),

fingerprint as (
    -- the hashes are counted, not grouped (a distinct count is cheaper than a grouping with a
    -- count per hash); they are grouped only when some hash is held more than once, to name
    -- those hashes: DuckDB skips that part when none is
    select
        count(id_hash) as ids,
        count(distinct id_hash) as distinct_id_hashes,
    from hashes
),

repeated as (
    select hashes.id_hash
    from hashes
    semi join fingerprint on fingerprint.ids > fingerprint.distinct_id_hashes
    where hashes.id_hash is not null
    group by hashes.id_hash
    having count(*) > 1
),

repeated_days as (
    -- each repeated hash on each day holding it: how many versions that day holds, and the first day
    select
        utc_date,
        id_hash,
        count(*) as versions,
        min(utc_date) over (partition by id_hash) as first_day,
    from hashes
    semi join repeated using (id_hash)
    group by utc_date, id_hash
),

surplus as (
    -- the versions beyond the one counted (on the first day holding the hash; none on a later day)
    select
        utc_date,
        sum(versions - if(utc_date = first_day, 1, 0)) as surplus_ids,
        sum(id_hash::hugeint * (versions - if(utc_date = first_day, 1, 0))) as id_hash_surplus,
        list(id_hash order by id_hash) as repeated_id_hashes,
    from repeated_days
    group by utc_date
),

final as (
    select
        utc_date,
        days.records::bigint as records,
        (days.ids - coalesce(surplus.surplus_ids, 0))::bigint as distinct_id_hashes,
        (days.id_hash_total - coalesce(surplus.id_hash_surplus, 0))::hugeint as id_hash_sum,
        coalesce(surplus.repeated_id_hashes, []::ubigint[]) as repeated_id_hashes,
    from days
    left join surplus using (utc_date)
)

select * from final
