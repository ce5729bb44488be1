"""Group convolutions with regular representations of finite rotation groups."""
