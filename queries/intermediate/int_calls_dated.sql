-- int_calls_dated: one row per call leg with its report calendar and quality flags; key: id
-- report_date / report_hour: local date and hour of created_at in the reporting time zone
-- (the one calendar of every report); utc_date: for reconciliation with the API's usage.
with calls as (
    select * from stg_cdrs
),

timed as (
    select
        *,
        report_time(created_at) as created_at_local,
        -- talk time as the API bills it: whole seconds, rounded up
        case
            when answered_at is not null
                then (epoch_ms(ended_at) - epoch_ms(answered_at) + 999) // 1000
        end as talk_secs,
    from calls
),

final as (
    select
        id,
        call_session_id,
        direction,
        country_code,
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
        status = 'answered' as is_answered,
        -- short calls: answered, 6 talk seconds or fewer (the usual "short duration" cut-off)
        coalesce(status = 'answered' and talk_secs <= 6, false) as is_short_call,
        -- network failures (the complement of NER): the far end never got the call, SIP 5xx
        sip_response_code between 500 and 599 as is_network_failure,
    from timed
)

select * from final
