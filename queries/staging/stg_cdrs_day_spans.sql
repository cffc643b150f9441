-- stg_cdrs_day_spans: one row per UTC day of created_at holding call legs that last: the earliest start and the latest end among them; key: utc_date
-- materialized: table
-- incremental: utc_date
-- How far a day's legs reach: an incremental build recomputes fct_call_concurrency_daily for the
-- report days a changed day's legs (before and after) cover, from every day whose legs reach them.
-- Every version in the lake counts (a span too wide only recomputes more days), so this reads the
-- lake rather than the dedupe; the instants are taken in microseconds, as macros/id_hashes.sql
-- counts the day: TIMESTAMPTZ arithmetic costs far more.
select
    date '1970-01-01' + (epoch_us(created_at) // 86400000000)::integer as utc_date,
    make_timestamptz(min(epoch_us(started_at))) as first_started_at,
    make_timestamptz(max(epoch_us(ended_at))) as last_ended_at,
from lake_cdrs
where ended_at > started_at
group by utc_date
