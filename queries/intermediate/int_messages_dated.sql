-- int_messages_dated: one row per message with its report calendar, delivery outcome and cost check; key: account, id
-- report_date / report_hour: local date and hour of created_at in the reporting time zone; utc_date: for reconciliation.
with messages as (
    select * from stg_mdrs
),

final as (
    select
        account,
        id,
        direction,
        cld,
        country_code,
        message_type,
        encoding,
        parts,
        status,
        carrier,
        messaging_profile_id,
        messaging_profile_name,
        tags,
        errors,
        created_at,
        sent_at,
        completed_at,
        updated_at,
        rate,
        cost,
        carrier_fee,
        currency,
        report_time(created_at)::date as report_date,
        hour(report_time(created_at)) as report_hour,
        utc_time(created_at)::date as utc_date,
        message_is_delivered(status) as is_delivered,
        message_is_failed(status) as is_failed,
        -- the contract: cost = rate x parts, with parts >= 1
        parts is null or parts < 1 or cost is distinct from rate * parts as is_miscosted,
    from messages
)

select * from final
