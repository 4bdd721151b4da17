"""Everything that opens a DuckDB file goes through this package (see ``db.connect``)."""
