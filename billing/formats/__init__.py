"""The billing-export formats the ledger reads, in the order they are tried."""

from billing.formats.focus import FOCUS

FORMATS = (FOCUS,)

__all__ = ["FORMATS"]
