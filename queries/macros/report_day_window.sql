-- report_day_window(report_date): the instants a report date starts and ends, struct(window_start, window_end)
-- A report day is a local day: 23 or 25 hours across a DST change, so it ends where the next one starts.
create macro report_day_window(report_date) as
struct_pack(window_start := report_day_start(report_date), window_end := report_day_start(report_date + 1))
