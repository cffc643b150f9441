-- utc_hour_window(utc_hour): the instants a UTC wall-clock hour (a naive timestamp) starts and ends, struct(window_start, window_end)
create macro utc_hour_window(utc_hour) as
struct_pack(window_start := timezone('UTC', utc_hour), window_end := timezone('UTC', utc_hour + interval 1 hour))
