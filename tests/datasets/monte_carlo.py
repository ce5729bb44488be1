"""Shared pieces of the Monte Carlo tests."""


def mean_and_error(values, chains):
    """Mean of [measurements * chains] values and its standard error from the spread of the chain
    means: the chains are independent, so autocorrelation within a chain is accounted for."""
    per_chain = values.view(-1, chains).mean(0)
    return float(per_chain.mean()), float(per_chain.std() / chains**0.5)
