-- recent_history(series_table, scope_key, window_period, window_value, is_judged, is_usable, days, min_points): one row per judged window of a series (those this build recomputes: every one in a full build) with min_points usable windows of its scope in the days before it: its columns and `history`, their values; key: the series' key
-- The usual level of a ratio, where a quiet day says nothing (it is left out, not 0), from one self-join of the series (scope_key: a struct of its scope columns), so a rule reads its facts once.
create macro recent_history(series_table, scope_key, window_period, window_value, is_judged, is_usable, days, min_points) as table
with history_series as (
    select
        *,
        scope_key as history_scope,
        window_period::timestamp as history_period,
        window_value as history_value,
        is_judged as history_judged,
        is_usable as history_usable,
    from query_table(series_table)
)

select
    judged.* exclude (history_scope, history_period, history_value, history_judged, history_usable),
    list(past.history_value) as history,
from history_series as judged
join history_series as past
    on past.history_scope = judged.history_scope
    and past.history_period < judged.history_period
    and past.history_period >= judged.history_period - to_days(days::integer)
where judged.history_judged
    -- only the windows this build recomputes (every one in a full build)
    and judged.history_period >= lookback_start(0)
    and past.history_usable
group by all
having count(*) >= min_points
