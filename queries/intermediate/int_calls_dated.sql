-- int_calls_dated: one row per call leg with its report calendar, quality flags and billing checks; key: account, id
-- report_date / report_hour: local date and hour of created_at in the reporting time zone
-- (the one calendar of every report); utc_date: for reconciliation with the API's usage.
with calls as (
    select * from stg_cdrs
),

timed as (
    select
        *,
        report_time(created_at) as created_at_local,
        status = 'answered' as is_answered,
        -- talk time as the API bills it: whole seconds, rounded up (null unanswered). The lake's
        -- timestamps are whole milliseconds, so microseconds // 1000 are exactly epoch_ms, which
        -- costs far more on a TIMESTAMPTZ
        ((epoch_us(ended_at) - epoch_us(answered_at)) // 1000 + 999) // 1000 as talk_secs,
    from calls
),

billed as (
    select
        *,
        -- the contract: 0 unanswered; the initial block when talk <= initial; else initial +
        -- whole increments covering the rest
        case
            when not is_answered then 0
            when talk_secs <= billing_initial_secs then billing_initial_secs
            else billing_initial_secs
                + (talk_secs - billing_initial_secs + billing_increment_secs - 1)
                // billing_increment_secs * billing_increment_secs
        end as expected_billed_duration_secs,
        -- cost = rate x billed / 60 rounded half-up to 6 decimals, checked without division
        -- (DuckDB divides decimals in floating point): the cost is that value exactly when it
        -- has at most 6 decimals and -0.00003 <= rate x billed - 60 x cost < 0.00003
        rate * billed_duration_secs - 60 * cost as unrounded_cost_difference,
    from timed
),

final as (
    select
        account,
        id,
        call_session_id,
        direction,
        cld,
        country_code,
        country_calling_code,
        number_type,
        connection_id,
        connection_name,
        tags,
        status,
        hangup_cause,
        sip_response_code,
        started_at,
        answered_at,
        ended_at,
        created_at,
        updated_at,
        duration_secs,
        billed_duration_secs,
        billing_initial_secs,
        billing_increment_secs,
        rate,
        cost,
        currency,
        created_at_local::date as report_date,
        hour(created_at_local) as report_hour,
        utc_time(created_at)::date as utc_date,
        talk_secs,
        is_answered,
        -- short calls: answered, 6 talk seconds or fewer (the usual "short duration" cut-off)
        coalesce(is_answered and talk_secs <= 6, false) as is_short_call,
        -- network failures (the complement of NER): the far end never got the call, SIP 5xx
        sip_response_code between 500 and 599 as is_network_failure,
        expected_billed_duration_secs,
        unrounded_cost_difference,
        billing_initial_secs < 0
            or billing_increment_secs <= 0
            or expected_billed_duration_secs is distinct from billed_duration_secs
            as is_misbilled_duration,
        cost is null
            or rate is null
            -- at most 6 decimals: in 18 digits (int64) when the cost fits, as any real one does,
            -- since rounding 38-digit decimals costs far more
            or coalesce(
                try_cast(cost as decimal(18, 9)) <> round(try_cast(cost as decimal(18, 9)), 6),
                cost <> round(cost, 6)
            )
            or unrounded_cost_difference < -0.00003
            or unrounded_cost_difference >= 0.00003
            as is_misbilled_cost,
    from billed
)

select * from final
