-- traffic_hourly(records_table, ranges_table, record_key, range_key, key_columns, measures): one row per account, UTC hour, report date and hour and value of key_columns with records, those columns then the fields of measures; key: account, utc_hour, report_date, report_hour and the fields of key_columns
-- One definition of the hourly traffic facts the alert rules read (fct_call_traffic_hourly,
-- fct_message_traffic_hourly). key_columns and measures are structs of the fact's columns in
-- order; key_columns may name high_risk_range: the range of ranges_table (`+<calling code><prefix>`)
-- an outbound record's number (cld) is in, else ''. A record matches the ranges whose range_key
-- equals its record_key (null matches none): an equality join, then the prefix test for the few
-- records with a listed key, never a test of every record against every range.
create macro traffic_hourly(records_table, ranges_table, record_key, range_key, key_columns, measures) as table
with ranges as (
    select
        range_key as listed_key,
        '+' || calling_code || prefix as number_prefix,
    from query_table(ranges_table)
),

records as (
    select * from query_table(records_table)
),

flagged as (
    select
        records.*,
        coalesce(ranges.number_prefix, '') as high_risk_range,
    from records
    left join ranges
        on record_key = ranges.listed_key
        and records.direction = 'outbound'
        and starts_with(records.cld, ranges.number_prefix)
),

totals as (
    select
        account,
        date_trunc('hour', utc_time(created_at)) as utc_hour,
        report_date,
        report_hour,
        key_columns as traffic_key,
        measures as traffic,
    from flagged
    group by all
),

final as (
    select
        account,
        utc_hour,
        report_date,
        report_hour,
        traffic_key.*,
        traffic.*,
    from totals
)

select * from final
