-- a call bills by the contract: billed seconds from its talk time and increments (0 unanswered; the initial block when talk <= initial; else initial + whole increments covering the rest) and cost = rate x billed_duration_secs / 60 rounded half-up to 6 decimals
-- Both rules in one pass over the calls; broken_rule names what a row breaks. The cost is
-- checked without division (DuckDB divides decimals in floating point): it is the rounded
-- value exactly when it has at most 6 decimals and -0.00003 <= rate x billed - 60 x cost < 0.00003.
with calls as (
    select * from int_calls_dated
),

checked as (
    select
        id,
        status,
        talk_secs,
        billing_initial_secs,
        billing_increment_secs,
        billed_duration_secs,
        case
            when not is_answered then 0
            when talk_secs <= billing_initial_secs then billing_initial_secs
            else billing_initial_secs
                + (talk_secs - billing_initial_secs + billing_increment_secs - 1)
                // billing_increment_secs * billing_increment_secs
        end as expected_billed_duration_secs,
        rate,
        cost,
        rate * billed_duration_secs - 60 * cost as unrounded_difference,
    from calls
),

judged as (
    select
        *,
        billing_initial_secs < 0
            or billing_increment_secs <= 0
            or expected_billed_duration_secs is distinct from billed_duration_secs
            as breaks_increments,
        cost is null
            or rate is null
            or cost <> round(cost, 6)
            or unrounded_difference < -0.00003
            or unrounded_difference >= 0.00003
            as breaks_cost,
    from checked
)

select
    concat_ws(' and ', if(breaks_increments, 'billed seconds', null), if(breaks_cost, 'cost', null)) as broken_rule,
    * exclude (breaks_increments, breaks_cost),
from judged
where breaks_increments or breaks_cost
