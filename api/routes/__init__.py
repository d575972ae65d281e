"""One module per resource: datasets, plans, audit, health."""
