-- spike_threshold(history, ratio, z, least_spread, minimum): the level a window must exceed to stand far above its history: the highest of baseline x ratio, baseline + z x spread (the spread at least least_spread) and minimum (null: none)
-- One definition of "far above its usual": large against the baseline, beyond its noise (a quiet history is not a zero-noise one) and above a floor.
create macro spike_threshold(history, ratio, z, least_spread, minimum) as
greatest(
    baseline_median(history) * ratio,
    baseline_median(history) + z * greatest(baseline_spread(history), least_spread),
    minimum
)
