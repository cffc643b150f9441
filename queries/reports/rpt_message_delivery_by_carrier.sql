-- rpt_message_delivery_by_carrier: one row per account, report month and carrier with outbound messages; key: account, month, carrier
-- delivery_rate = delivered / outbound messages; failure_rate = (delivery_failed +
-- gateway_rejected) / outbound messages; the rest (queued, sent, unconfirmed) are pending.
select * exclude (breakdown, country_code)
from fct_message_delivery_monthly
where breakdown = 'carrier'
order by account, month, messages desc, carrier
