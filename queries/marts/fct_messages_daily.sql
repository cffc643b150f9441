-- fct_messages_daily: one row per account, report date, UTC date, direction, message type, country, messaging profile, currency and status; key: account, report_date, utc_date, direction, message_type, country_code, messaging_profile_id, currency, status
-- incremental: report_date
-- The base of every messaging figure and of the finance statement: sums of it are sums of the records.
select
    account,
    report_date,
    utc_date,
    direction,
    message_type,
    country_code,
    messaging_profile_id,
    currency,
    status,
    count(*) as messages,
    sum(parts)::bigint as parts,
    sum(cost) as cost,
    sum(carrier_fee) as carrier_fee,
    -- messages whose cost is not rate x parts (a data test lists them)
    count(*) filter (where is_miscosted) as miscosted_messages,
    -- a profile's name can change; the latest version names it (macros/latest_name.sql)
    latest_name(messaging_profile_name, updated_at) as messaging_profile_name,
    max(updated_at) as last_updated_at,
from int_messages_dated
group by all
