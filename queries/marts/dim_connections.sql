-- dim_connections: one row per account and connection (SIP trunk) seen on a call; key: account, connection_id
with days as (
    select * from fct_calls_daily
),

final as (
    select
        account,
        connection_id,
        arg_max(connection_name, last_updated_at) as connection_name,
        min(report_date) as first_report_date,
        max(report_date) as last_report_date,
        sum(calls)::bigint as calls,
    from days
    group by account, connection_id
)

select * from final
