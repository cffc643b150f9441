-- fct_call_tag_sets_daily: one row per account, report date, direction, currency and set of tags on a call leg; key: account, report_date, direction, currency, tags
-- incremental: report_date
-- Records share a few tag sets, so this is small: fct_tags_daily spreads it over the tags,
-- and the statement's data test totals the records from it, apart from fct_calls_daily (which
-- the statement reads).
select
    account,
    report_date,
    direction,
    currency,
    tags,
    count(*) as calls,
    sum(billed_duration_secs)::bigint as billed_duration_secs,
    sum(cost) as cost,
from int_calls_dated
group by all
