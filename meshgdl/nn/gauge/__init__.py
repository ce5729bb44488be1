"""Gauge-equivariant message passing on framed graphs: the base class, GemConv, IsoConv, and the
nonlinearities and norms that keep gauge equivariance."""
