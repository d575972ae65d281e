"""Actual spend: ingest of billing exports (later issues)."""
