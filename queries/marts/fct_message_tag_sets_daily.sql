-- fct_message_tag_sets_daily: one row per account, report date, direction, message type, currency and set of tags on a message; key: account, report_date, direction, message_type, currency, tags
-- incremental: report_date
-- Records share a few tag sets, so this is small: fct_tags_daily spreads it over the tags,
-- and the statement's data test totals the records from it, apart from fct_messages_daily
-- (which the statement reads).
select
    account,
    report_date,
    direction,
    message_type,
    currency,
    tags,
    count(*) as messages,
    sum(parts)::bigint as parts,
    sum(cost) as cost,
from int_messages_dated
group by all
