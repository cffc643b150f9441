-- lookback_start(lookback_days): a date: the first report day an alert rule reads to judge every window this build recomputes (those ending after recomputed_since(); in a full build, all) against the lookback_days before it
-- A rule incremental on window_end filters its facts with it, and the history macros judge only
-- the windows from lookback_start(0) on. A window ending after the instant
-- begins at most 25 hours before it, and a report day is at most a day behind the UTC day (the
-- calendar's report_time would turn the full build's minus infinity into null).
create macro lookback_start(lookback_days) as timezone('UTC', recomputed_since())::date - lookback_days::integer - 3
