-- drop_threshold(history, level, z, least_spread): the level a ratio must fall below to stand far below its history: the lower of level and baseline - z x spread (the spread at least least_spread)
-- The mirror of spike_threshold for ratios that fall (ASR, NER): a fall must be both large (below level) and beyond the usual noise.
create macro drop_threshold(history, level, z, least_spread) as
least(level, baseline_median(history) - z * greatest(baseline_spread(history), least_spread))
