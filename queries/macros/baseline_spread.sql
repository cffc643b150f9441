-- baseline_spread(history): the robust spread of a list of past values, 1.4826 x their median absolute deviation (a standard deviation for normal noise)
-- How far values usually stray from their median; one past spike moves it no more than any other value.
create macro baseline_spread(history) as
1.4826 * list_aggregate(list_transform(history, lambda value: abs(value - baseline_median(history))), 'median')
