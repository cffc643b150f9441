-- stg_cdrs_day_spans: one row per UTC day of created_at holding call legs that last: the earliest start and the latest end among them; key: utc_date
-- materialized: table
-- incremental: utc_date
-- How far a day's legs reach: an incremental build recomputes fct_call_concurrency_daily for the
-- report days a changed day's legs (before and after) cover, from every day whose legs reach them.
-- The day is counted from microseconds, as macros/id_hashes.sql counts it.
select
    date '1970-01-01' + (epoch_us(created_at) // 86400000000)::integer as utc_date,
    min(started_at) as first_started_at,
    max(ended_at) as last_ended_at,
from stg_cdrs
where ended_at > started_at
group by utc_date
