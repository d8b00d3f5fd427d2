"""`make bench`: side-by-side figures for ingest, drain, outages and lag. Never collected by pytest."""
