-- a call bills by the contract: billed seconds from its talk time and increments (0 unanswered; the initial block when talk <= initial; else initial + whole increments covering the rest) and cost = rate x billed_duration_secs / 60 rounded half-up to 6 decimals
-- incremental: utc_date
-- Row by row, so an incremental build checks the changed days' rows alone.
-- The rules are int_calls_dated's is_misbilled_duration and is_misbilled_cost, judged once per
-- call while fct_calls_daily is built (its misbilled_calls). The calls are read again only to
-- list them when that count is not zero: with no misbilled row the join below has nothing to
-- match, and DuckDB stops reading at once (the flag is the join key, so no filter on the calls
-- can run ahead of that check). broken_rule names what a row breaks.
with misbilled as (
    select true as is_misbilled
    from fct_calls_daily
    where misbilled_calls > 0
    limit 1
),

calls as (
    select
        *,
        is_misbilled_duration or is_misbilled_cost as is_misbilled,
    from int_calls_dated
),

offending as (
    select calls.*
    from calls
    semi join misbilled on calls.is_misbilled = misbilled.is_misbilled
)

select
    account,
    concat_ws(' and ', if(is_misbilled_duration, 'billed seconds', null), if(is_misbilled_cost, 'cost', null)) as broken_rule,
    id,
    status,
    talk_secs,
    billing_initial_secs,
    billing_increment_secs,
    billed_duration_secs,
    expected_billed_duration_secs,
    rate,
    cost,
    unrounded_cost_difference as unrounded_difference,
from offending
