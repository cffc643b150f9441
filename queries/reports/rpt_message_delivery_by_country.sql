-- rpt_message_delivery_by_country: one row per account, report month and destination country with outbound messages; key: account, month, country_code
-- delivery_rate and failure_rate as in rpt_message_delivery_by_carrier.
select * exclude (breakdown, carrier)
from fct_message_delivery_monthly
where breakdown = 'country'
order by account, month, messages desc, country_code
