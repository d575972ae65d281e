"""The vocabulary of commitplan: validated types shared by every layer (no business logic)."""

from models.commitments import Commitment, Purchase
from models.errors import InputError
from models.pools import Pool
from models.pricing import HOURS_PER_MONTH, Offering, OfferingKind, Payment, PriceBook
from models.usage import UsageMatrix
from models.plan import Plan, PlanSummary, PurchaseLine
from models.bill import Bill, CommitmentUsage

__all__ = [
    "HOURS_PER_MONTH",
    "Bill",
    "Commitment",
    "CommitmentUsage",
    "InputError",
    "Offering",
    "OfferingKind",
    "Payment",
    "Plan",
    "Pool",
    "PlanSummary",
    "PriceBook",
    "Purchase",
    "PurchaseLine",
    "UsageMatrix",
]
