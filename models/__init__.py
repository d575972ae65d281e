"""The vocabulary of commitplan: validated types shared by every layer (no business logic)."""

from models.bill import Bill, CommitmentUsage
from models.commitments import Commitment, Purchase
from models.errors import InputError
from models.plan import Plan, PlanSummary, PurchaseLine
from models.pools import Pool
from models.pricing import HOURS_PER_MONTH, Offering, OfferingKind, Payment, PriceBook
from models.usage import UsageMatrix

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
