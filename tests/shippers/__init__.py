"""Documents as real log shippers write them, with what a person reading them would say they are."""
