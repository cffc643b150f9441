-- a call's billed seconds follow its talk time and increments: 0 unanswered; the initial block when talk <= initial; else initial + whole increments covering the rest
with calls as (
    select * from int_calls_dated
),

expected as (
    select
        id,
        status,
        talk_secs,
        billing_initial_secs,
        billing_increment_secs,
        billed_duration_secs,
        case
            when not is_answered then 0
            when talk_secs <= billing_initial_secs then billing_initial_secs
            else billing_initial_secs
                + (talk_secs - billing_initial_secs + billing_increment_secs - 1)
                // billing_increment_secs * billing_increment_secs
        end as expected_billed_duration_secs,
    from calls
)

select * from expected
where billing_initial_secs < 0
    or billing_increment_secs <= 0
    or expected_billed_duration_secs is distinct from billed_duration_secs
