-- fct_message_delivery_monthly: one row per account, report month and carrier, and one per account, report month and destination country, with outbound messages; key: account, month, breakdown, carrier, country_code
-- incremental: month
-- The one definition of delivery for its reports: breakdown 'carrier' rows have a carrier (and
-- no country_code), 'country' rows a country_code (and no carrier). delivered: status delivered;
-- failed: delivery_failed + gateway_rejected; pending: the rest (queued, sent, unconfirmed).
with delivery as (
    select * from fct_message_delivery_daily
    where direction = 'outbound' and report_date >= recomputed_month_start()
),

messages as (
    select * from fct_messages_daily
    where direction = 'outbound' and report_date >= recomputed_month_start()
),

breakdowns as (
    select
        account,
        report_date,
        'carrier' as breakdown,
        carrier,
        null as country_code,
        status,
        messages,
    from delivery
    union all
    select
        account,
        report_date,
        'country' as breakdown,
        null as carrier,
        country_code,
        status,
        messages,
    from messages
),

monthly as (
    select
        account,
        strftime(report_date, '%Y-%m') as month,
        breakdown,
        carrier,
        country_code,
        sum(messages) as messages,
        sum(messages) filter (where status = 'delivered') as delivered,
        sum(messages) filter (where status in ('delivery_failed', 'gateway_rejected')) as failed,
    from breakdowns
    group by all
),

final as (
    select
        account,
        month,
        breakdown,
        carrier,
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
