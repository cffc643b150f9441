-- dim_messaging_profiles: one row per account and messaging profile seen on a message; key: account, messaging_profile_id
select * rename (id as messaging_profile_id, name as messaging_profile_name, records as messages)
from seen_dimension('fct_messages_daily', messaging_profile_id, messaging_profile_name, messages)
