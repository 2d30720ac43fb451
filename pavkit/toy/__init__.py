"""Toy MDPs where every quantity of the paper is exact."""
