"""datahub: cross-department public-safety data hub (峨眉山市).

Feeds from police, government, social security and community are read against
their contracts, pseudonymised, validated with Great Expectations and loaded
into a DuckDB warehouse. See README.md for the data flow.
"""

__version__ = "0.1.0"
