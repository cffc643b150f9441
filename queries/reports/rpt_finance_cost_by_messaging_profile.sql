-- rpt_finance_cost_by_messaging_profile: one row per account, report month, messaging profile and currency; key: account, month, messaging_profile_id, currency
-- messaging_profile_name is the profile's latest name; carrier_fee is charged on top of cost.
-- Rebuilt whole by every build, not `-- incremental: month`: a rename changes every month's messaging_profile_name.
with messages as (
    select * from fct_messages_daily
),

profiles as (
    select * from dim_messaging_profiles
),

monthly as (
    select *
    from monthly_totals(
        'messages',
        key_columns := struct_pack(messaging_profile_id, currency),
        totals := struct_pack(
            messages := sum(messages), parts := sum(parts), cost := sum(cost), carrier_fee := sum(carrier_fee)
        )
    )
),

final as (
    select
        account,
        monthly.month,
        messaging_profile_id,
        profiles.messaging_profile_name,
        monthly.currency,
        monthly.messages::bigint as messages,
        monthly.parts::bigint as parts,
        monthly.cost::decimal(38, 9) as cost,
        monthly.carrier_fee::decimal(38, 9) as carrier_fee,
    from monthly
    left join profiles using (account, messaging_profile_id)
)

select * from final
order by account, month, currency, cost desc, messaging_profile_id
