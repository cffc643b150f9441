-- spike_windows(series_table, scope_key, window_period, is_judged, history_start, steps, step, min_points, spike_ratio, spike_z, least_spread, minimum): one row per judged window of a series whose `observed` stands above its threshold: its columns, `history` (as trailing_history), `baseline` and `threshold`; key: the series' key
-- One definition of a spike rule over trailing_history and spike_threshold: least_spread and
-- minimum may read the window's `history` (a quiet window counting 0 once the account had begun).
create macro spike_windows(
    series_table, scope_key, window_period, is_judged, history_start, steps, step, min_points,
    spike_ratio, spike_z, least_spread, minimum
) as table
with histories as (
    select *
    -- the series' own `observed` is the value its history is made of
    from trailing_history(series_table, scope_key, window_period, observed, is_judged, history_start, steps, step, min_points)
),

scored as (
    select
        *,
        baseline_median(history) as baseline,
        spike_threshold(history, spike_ratio, spike_z, least_spread := least_spread, minimum := minimum) as threshold,
    from histories
)

select * from scored
where observed > threshold
