-- fct_message_tags_daily: one row per report date, tag, direction, message type and currency; key: report_date, tag, direction, message_type, currency
-- A message with several tags counts once under each of them (tag is null for untagged
-- messages), so sums across tags exceed the totals: never add tags up.
with tag_sets as (
    -- the totals per tag set: records share a few of them, so the spread over tags is small
    select * from fct_message_tag_sets_daily
),

tagged as (
    select
        report_date,
        direction,
        message_type,
        currency,
        messages,
        parts,
        cost,
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
        report_date,
        tag,
        direction,
        message_type,
        currency,
        sum(messages)::bigint as messages,
        sum(parts)::bigint as parts,
        sum(cost) as cost,
    from tagged
    group by all
)

select * from final
