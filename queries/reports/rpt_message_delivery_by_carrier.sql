-- rpt_message_delivery_by_carrier: one row per report month and carrier with outbound messages; key: month, carrier
-- delivery_rate = delivered / outbound messages; failure_rate = (delivery_failed +
-- gateway_rejected) / outbound messages; the rest (queued, sent, unconfirmed) are pending.
with delivery as (
    select * from fct_message_delivery_daily
    where direction = 'outbound'
),

monthly as (
    select
        strftime(report_date, '%Y-%m') as month,
        carrier,
        sum(messages) as messages,
        sum(messages) filter (where status = 'delivered') as delivered,
        sum(messages) filter (where status in ('delivery_failed', 'gateway_rejected')) as failed,
    from delivery
    group by all
),

final as (
    select
        month,
        carrier,
        messages::bigint as messages,
        coalesce(delivered, 0)::bigint as delivered,
        coalesce(failed, 0)::bigint as failed,
        (messages - coalesce(delivered, 0) - coalesce(failed, 0))::bigint as pending,
        coalesce(delivered, 0) / messages as delivery_rate,
        coalesce(failed, 0) / messages as failure_rate,
    from monthly
)

select * from final
order by month, messages desc, carrier
