-- dim_connections: one row per account and connection (SIP trunk) seen on a call; key: account, connection_id
select * rename (id as connection_id, name as connection_name, records as calls)
from seen_dimension('fct_calls_daily', connection_id, connection_name, calls)
