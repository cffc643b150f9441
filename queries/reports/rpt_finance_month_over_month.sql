-- rpt_finance_month_over_month: one row per account, report month, product and currency with usage; key: account, month, product, currency
-- incremental: month
-- previous_cost is the calendar month before (null when that month has no usage of the
-- product in the currency); cost_change_pct is null when there is nothing to compare with.
with statement as (
    select * from rpt_finance_monthly_statement
    -- from the month before the first one recomputed: its cost is the first one's previous_cost (its
    -- own row, lacking the month before it, is not the one kept)
    where strptime(month, '%Y-%m') >= recomputed_month_start() - interval 1 month
),

monthly as (
    select
        account,
        month,
        product,
        currency,
        sum(records) as records,
        sum(cost) as cost,
        strftime(strptime(month, '%Y-%m') - interval 1 month, '%Y-%m') as previous_month,
    from statement
    group by account, month, product, currency
),

final as (
    select
        current_month.account,
        current_month.month,
        current_month.product,
        current_month.currency,
        current_month.records::bigint as records,
        current_month.cost::decimal(38, 9) as cost,
        previous.cost::decimal(38, 9) as previous_cost,
        (current_month.cost - previous.cost)::decimal(38, 9) as cost_change,
        round(100 * (current_month.cost - previous.cost) / nullif(previous.cost, 0), 2)::double as cost_change_pct,
    from monthly as current_month
    left join monthly as previous
        on current_month.account = previous.account
        and current_month.previous_month = previous.month
        and current_month.product = previous.product
        and current_month.currency = previous.currency
)

select * from final
order by account, month, product, currency
