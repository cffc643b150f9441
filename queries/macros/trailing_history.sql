-- trailing_history(series_table, scope_key, window_period, window_value, is_judged, history_start, steps, step, min_points, missing := 0): one row per judged window of a series (those this build recomputes: every one in a full build) with min_points steps inside its history: its columns and `history`, the value of its scope 1..steps steps back, oldest last (missing where the series has no window); key: the series' key
-- The usual level where a quiet window counts (as 0) once the account had begun, from one self-join of the series (scope_key: a struct of its scope columns), so a rule reads its facts once.
create macro trailing_history(
    series_table, scope_key, window_period, window_value, is_judged, history_start, steps, step, min_points, missing := 0
) as table
with history_series as (
    select
        *,
        scope_key as history_scope,
        window_period::timestamp as history_period,
        window_value as history_value,
    from query_table(series_table)
),

history_judged as (
    select *, history_start::timestamp as history_first,
    from history_series
    -- only the windows this build recomputes (every one in a full build)
    where is_judged and history_period >= lookback_start(0)
),

history_offsets as (
    select range as steps_back
    from range(1, 1000)
    where range <= steps
)

select
    judged.* exclude (history_scope, history_period, history_value, history_first),
    list(coalesce(past.history_value, missing) order by offsets.steps_back) as history,
from history_judged as judged
cross join history_offsets as offsets
left join history_series as past
    on past.history_scope = judged.history_scope
    and past.history_period = judged.history_period - offsets.steps_back * step
where judged.history_period - offsets.steps_back * step >= judged.history_first
group by all
having count(*) >= min_points
