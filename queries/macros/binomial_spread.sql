-- binomial_spread(share, trials): the standard deviation of a share of trials at that share, sqrt(share x (1 - share) / trials)
-- The least noise a day's ratio has: a history of steady large days says nothing of a small day's.
create macro binomial_spread(share, trials) as sqrt(share * (1 - share) / trials)
