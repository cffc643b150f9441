-- seeds/high_risk_destinations.csv: calling codes are digits, no range lies inside another (a call would count twice), and the range types are known
with ranges as (
    select *, '+' || calling_code || prefix as number_prefix from seed_high_risk_destinations
)

select ranges.country_code, ranges.calling_code, ranges.prefix, ranges.range_type,
from ranges
left join ranges as outer_range
    on outer_range.number_prefix <> ranges.number_prefix
    and starts_with(ranges.number_prefix, outer_range.number_prefix)
where outer_range.number_prefix is not null
    or not regexp_full_match(ranges.calling_code, '[0-9]{1,3}')
    or not regexp_full_match(ranges.prefix, '[0-9]*')
    or ranges.range_type not in ('premium', 'irsf', 'satellite')
union all
select country_code, calling_code, prefix, range_type,
from ranges
group by all
having count(*) > 1
