-- rpt_message_delivery_by_country: one row per report month and destination country with outbound messages; key: month, country_code
-- delivery_rate and failure_rate as in rpt_message_delivery_by_carrier.
with messages as (
    select * from fct_messages_daily
    where direction = 'outbound'
),

monthly as (
    select
        strftime(report_date, '%Y-%m') as month,
        country_code,
        sum(messages) as messages,
        sum(messages) filter (where status = 'delivered') as delivered,
        sum(messages) filter (where status in ('delivery_failed', 'gateway_rejected')) as failed,
    from messages
    group by all
),

final as (
    select
        month,
        country_code,
        messages::bigint as messages,
        coalesce(delivered, 0)::bigint as delivered,
        coalesce(failed, 0)::bigint as failed,
        (messages - coalesce(delivered, 0) - coalesce(failed, 0))::bigint as pending,
        coalesce(delivered, 0) / messages as delivery_rate,
        coalesce(failed, 0) / messages as failure_rate,
    from monthly
)

select * from final
order by month, messages desc, country_code
