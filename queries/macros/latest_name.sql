-- latest_name(name_value, updated_value): an aggregate: the name of a group's latest version (greatest updated_value), the greater name where two are equally late
-- One rule for what names a connection or messaging profile whose name changed: the daily facts pick
-- it per day, the dims from those days' picks. Of two names at one instant, arg_max alone would pick
-- by row order, which differs between a full build and an incremental one. A version without
-- updated_value names nothing, as with arg_max.
create macro latest_name(name_value, updated_value) as
arg_max(name_value, if(updated_value is null, null, (updated_value, name_value)))
