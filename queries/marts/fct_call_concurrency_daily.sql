-- fct_call_concurrency_daily: one row per account and report date on which a call leg starts, ends or is in progress; key: account, report_date
-- materialized: table
-- incremental: report_date
-- spans: stg_cdrs_day_spans
-- A day's row depends only on the legs that start, end or are in progress in it: an incremental
-- build recomputes the days the changed days' legs reach, from the days whose legs reach those.
-- Each account's own legs in progress (two accounts' never add up). A call leg occupies
-- [started_at, ended_at); where one ends at the instant another starts, the ending one is released first. Days are local dates in the reporting time zone, events
-- are ordered by instant (a repeated local hour cannot reorder them).
-- Exact without sorting every event: starts and ends are counted per 10-second UTC bucket, the
-- level at each bucket's start is a running sum over buckets, and only the buckets that could
-- hold the day's peak (level at their start + their starts >= the best level already known)
-- are replayed event by event (the width that measured fastest: fewer buckets replay more events).
with calls as (
    -- the lake's timestamps are whole milliseconds: microseconds // 1000 are exactly epoch_ms,
    -- which costs far more on a TIMESTAMPTZ
    select
        account,
        epoch_us(started_at) // 1000 as start_ms,
        epoch_us(ended_at) // 1000 as end_ms,
    from stg_cdrs
    where ended_at > started_at
),

start_counts as (
    select
        account,
        start_ms // 10000 as bucket,
        count(*) as starts,
    from calls
    group by account, bucket
),

end_counts as (
    select
        account,
        end_ms // 10000 as bucket,
        count(*) as ends,
    from calls
    group by account, bucket
),

bucket_counts as (
    -- counted apart, not over a union of every start and end: no event list is ever written out
    select
        -- `using` merges the keys of a full join: each is the side's that has it
        account,
        bucket,
        coalesce(start_counts.starts, 0) as starts,
        coalesce(end_counts.ends, 0) as ends,
    from start_counts
    full outer join end_counts using (account, bucket)
),

buckets as (
    select
        account,
        bucket,
        report_time(to_timestamp(bucket * 10))::date as report_date,
        starts,
        starts - ends as net,
        -- every leg brings both its events, so the running sum of earlier buckets is the level now
        coalesce(
            sum(starts - ends) over (
                partition by account order by bucket rows between unbounded preceding and 1 preceding
            ),
            0
        ) as level_before,
    from bucket_counts
),

day_bounds as (
    select
        account,
        report_date,
        -- the level at local midnight: the level before the day's first event
        arg_min(level_before, bucket) as level_at_midnight,
        -- a level surely reached that day: at midnight, or at the end of some bucket
        greatest(arg_min(level_before, bucket), max(level_before + net)) as known_level,
    from buckets
    group by account, report_date
),

-- the dates between two with events, while a leg lasting days is in progress: the level all day
-- is the one the next date with events starts at
carried_days as (
    select
        account,
        unnest(generate_series(previous_date + 1, report_date - 1, interval 1 day))::date as report_date,
        level_at_midnight as level,
    from (
        select
            account, report_date, level_at_midnight,
            lag(report_date) over (partition by account order by report_date) as previous_date,
        from day_bounds
    )
    where level_at_midnight > 0 and report_date > previous_date + 1
),

candidate_buckets as (
    select
        account,
        buckets.bucket,
        report_date,
        buckets.level_before,
    from buckets
    inner join day_bounds using (account, report_date)
    where buckets.starts > 0
        and buckets.level_before + buckets.starts >= day_bounds.known_level
),

events as (
    -- the events of the candidate buckets only; one sortable key per event: milliseconds x 2,
    -- + 1 for a start, so at one instant ends sort first
    select calls.account, calls.start_ms // 10000 as bucket, calls.start_ms * 2 + 1 as event_key
    from calls
    semi join candidate_buckets
        on calls.account = candidate_buckets.account
        and calls.start_ms // 10000 = candidate_buckets.bucket
    union all
    select calls.account, calls.end_ms // 10000 as bucket, calls.end_ms * 2 as event_key
    from calls
    semi join candidate_buckets
        on calls.account = candidate_buckets.account
        and calls.end_ms // 10000 = candidate_buckets.bucket
),

replayed as (
    select
        account,
        candidate_buckets.report_date,
        events.event_key,
        candidate_buckets.level_before + sum(if(events.event_key % 2 = 1, 1, -1)) over (
            partition by account, bucket
            order by events.event_key
            rows between unbounded preceding and current row
        ) as level,
    from events
    inner join candidate_buckets using (account, bucket)
),

event_peaks as (
    select
        account,
        report_date,
        max(level) as peak_level,
        -- the earliest event at the highest level
        arg_max(event_key, [level, -event_key]) as peak_key,
    from replayed
    group by account, report_date
),

final as (
    select
        account,
        report_date,
        day_bounds.level_at_midnight as calls_at_start,
        greatest(day_bounds.level_at_midnight, coalesce(event_peaks.peak_level, 0)) as peak_concurrent_calls,
        case
            when event_peaks.peak_level > day_bounds.level_at_midnight
                then report_time(to_timestamp(0) + to_milliseconds(event_peaks.peak_key // 2))
            else day_bounds.report_date::timestamp
        end as peak_at_local,
    from day_bounds
    left join event_peaks using (account, report_date)
    union all
    select account, report_date, level, level, report_date::timestamp,
    from carried_days
)

select * from final
