-- dim_connections: one row per connection (SIP trunk) seen on a call; key: connection_id
with days as (
    select * from fct_calls_daily
),

final as (
    select
        connection_id,
        arg_max(connection_name, last_updated_at) as connection_name,
        min(report_date) as first_report_date,
        max(report_date) as last_report_date,
        sum(calls)::bigint as calls,
    from days
    group by connection_id
)

select * from final
