-- baseline_median(history): the median of a list of past values (a scope's trailing days or hours, a day without records as 0)
-- The usual level an alert compares with: robust to the odd past spike, which a mean is not.
create macro baseline_median(history) as list_aggregate(history, 'median')
