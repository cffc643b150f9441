-- fct_tags_daily: one row per account, report date, tag, product, direction and currency; key: account, report_date, tag, product, direction, currency
-- incremental: report_date
-- A record with several tags counts once under each of them (tag is null for untagged records),
-- so sums across tags exceed the totals: never add tags up. product: voice | sms | mms.
with call_tag_sets as (
    select * from fct_call_tag_sets_daily
),

message_tag_sets as (
    select * from fct_message_tag_sets_daily
),

tag_sets as (
    -- the totals per tag set: records share a few of them, so the spread over tags is small
    select
        account,
        report_date,
        'voice' as product,
        direction,
        currency,
        tags,
        calls as records,
        cost,
    from call_tag_sets
    union all
    select
        account,
        report_date,
        message_type as product,
        direction,
        currency,
        tags,
        messages as records,
        cost,
    from message_tag_sets
),

tagged as (
    select
        * exclude (tags),
        -- a tag repeated on one record still counts that record once
        unnest(
            case
                when len(tags) = 0 then [null::varchar]
                when len(tags) = 1 then tags
                else list_distinct(tags)
            end
        ) as tag,
    from tag_sets
),

final as (
    select
        account,
        report_date,
        tag,
        product,
        direction,
        currency,
        sum(records)::bigint as records,
        sum(cost) as cost,
    from tagged
    group by all
)

select * from final
