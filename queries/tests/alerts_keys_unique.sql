-- rpt_alerts: every alert_key is one 32-digit md5 hex string, held by one row
select alert_key, count(*) as rows
from rpt_alerts
group by alert_key
having count(*) > 1 or alert_key is null or not regexp_full_match(alert_key, '[0-9a-f]{32}')
