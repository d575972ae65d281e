"""The billing-export formats the ledger reads, in the order they are tried."""

from billing.formats.azure import AZURE
from billing.formats.cur import CUR
from billing.formats.focus import FOCUS
from billing.formats.gcp import GCP

FORMATS = (FOCUS, CUR, AZURE, GCP)

__all__ = ["FORMATS"]
