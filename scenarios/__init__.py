"""Usage outlooks: sample estates (and, later, forecasts and what-if overlays)."""
