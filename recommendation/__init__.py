"""Recommendations without a query: similar products (and, next, complements, trending and
"for you"), built on the stores and the shoppers' profiles."""
