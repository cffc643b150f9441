-- latest_name(name_value, updated_value): an aggregate: the name of a group's latest version (greatest updated_value), of two equally late names the one whose hash is greater
-- One rule for what names a connection or messaging profile whose name changed: the daily facts pick
-- it per day, the dims from those days' picks. Of two names at one instant, arg_max alone would pick
-- by row order, which differs between a full build and an incremental one; any fixed choice will do,
-- and one number for the instant and the name's hash is as cheap to compare as the instant alone. A
-- version without updated_value names nothing, as with arg_max.
create macro latest_name(name_value, updated_value) as
arg_max(name_value, epoch_us(updated_value)::hugeint * 18446744073709551616 + hash(name_value))
