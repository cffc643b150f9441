-- a message's cost is exactly rate x parts, with parts >= 1
-- incremental: utc_date
-- Row by row, so an incremental build checks the changed days' rows alone.
-- The rule is int_messages_dated.is_miscosted, judged once per message while
-- fct_messages_daily is built (its miscosted_messages). The messages are read again only to
-- list them when that count is not zero: with no miscosted row the join below has nothing to
-- match, and DuckDB stops reading at once (the flag is the join key, so no filter on the
-- messages can run ahead of that check).
with miscosted as (
    select true as is_miscosted
    from fct_messages_daily
    where miscosted_messages > 0
    limit 1
),

messages as (
    select * from int_messages_dated
)

select
    messages.account,
    messages.id,
    messages.rate,
    messages.parts,
    messages.cost,
from messages
semi join miscosted on messages.is_miscosted = miscosted.is_miscosted
