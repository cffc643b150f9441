-- monthly_totals(daily_table, key_columns, totals): one row per account, report month and value of key_columns with rows: account, month ('YYYY-MM', report time zone), the fields of key_columns, then those of totals; key: account, month and the fields of key_columns
-- One definition of the month a finance report rolls a daily fact up to: key_columns is a struct
-- of the report's key columns in order, totals a struct of its aggregates over the month's rows
-- (with the report's types: counts bigint, money decimal(38, 9)).
create macro monthly_totals(daily_table, key_columns, totals) as table
with months as (
    -- grouped by the month's first day, formatted after: cheaper than formatting every row
    select
        account,
        date_trunc('month', report_date) as month_start,
        key_columns as monthly_key,
        totals as monthly_totals,
    from query_table(daily_table)
    group by all
),

final as (
    select
        account,
        strftime(month_start, '%Y-%m') as month,
        monthly_key.*,
        monthly_totals.*,
    from months
)

select * from final
