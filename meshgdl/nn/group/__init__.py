"""Group convolutions with regular representations of the finite groups C_N and D_N."""
