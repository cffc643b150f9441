-- rpt_message_delivery_by_country: one row per report month and destination country with outbound messages; key: month, country_code
-- delivery_rate and failure_rate as in rpt_message_delivery_by_carrier.
select * exclude (breakdown, carrier)
from fct_message_delivery_monthly
where breakdown = 'country'
order by month, messages desc, country_code
