-- dim_messaging_profiles: one row per account and messaging profile seen on a message; key: account, messaging_profile_id
with days as (
    select * from fct_messages_daily
),

final as (
    select
        account,
        messaging_profile_id,
        arg_max(messaging_profile_name, last_updated_at) as messaging_profile_name,
        min(report_date) as first_report_date,
        max(report_date) as last_report_date,
        sum(messages)::bigint as messages,
    from days
    group by account, messaging_profile_id
)

select * from final
