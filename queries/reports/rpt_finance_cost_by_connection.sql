-- rpt_finance_cost_by_connection: one row per account, report month, connection and currency; key: account, month, connection_id, currency
-- connection_name is the connection's latest name.
-- Rebuilt whole by every build, not `-- incremental: month`: a rename changes every month's connection_name.
with calls as (
    select * from fct_calls_daily
),

connections as (
    select * from dim_connections
),

monthly as (
    select *
    from monthly_totals(
        'calls',
        key_columns := struct_pack(connection_id, currency),
        totals := struct_pack(calls := sum(calls), billed_duration_secs := sum(billed_duration_secs), cost := sum(cost))
    )
),

final as (
    select
        account,
        monthly.month,
        connection_id,
        connections.connection_name,
        monthly.currency,
        monthly.calls::bigint as calls,
        monthly.billed_duration_secs::bigint as billed_duration_secs,
        round(monthly.billed_duration_secs / 60, 1)::decimal(18, 1) as billed_minutes,
        monthly.cost::decimal(38, 9) as cost,
    from monthly
    left join connections using (account, connection_id)
)

select * from final
order by account, month, currency, cost desc, connection_id
