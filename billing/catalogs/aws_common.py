"""AWS EC2 pool rules shared by the offer-file and Savings Plans importers (DESIGN.md §4, §5).

Pools and units:

- Size-flexible usage — regional Linux/UNIX (operation ``RunInstances``), shared tenancy,
  license included, no pre-installed software — goes to ``aws:ec2:{region}:{family}:linux`` in
  normalized-unit-hours (nano 0.25, micro 0.5, small 1, medium 2, large 4, xlarge 8, Nxlarge 8N;
  ``metal`` = the largest size of the family; ``metal-Nxl`` = 8N). Families AWS excludes from size
  flexibility (G4ad, G4dn, G5, G5g, Inf1) are treated as not size-flexible.
- Everything else is one pool per instance type, ``aws:ec2:{region}:{instance_type}:{os}``, in
  instance-hours. ``os`` is the slug of the operating system as the price list and the CUR write
  it (``windows``, ``rhel``, ``suse``, ``ubuntu-pro``, ``red-hat-enterprise-linux-with-ha``: the
  same slug ``billing.pool_rules`` gives ingested usage), then ``-sql-web`` / ``-sql-std`` /
  ``-sql-ent`` for pre-installed SQL Server, ``-byol`` for bring-your-own-license and
  ``-dedicated`` for dedicated tenancy, because each of those has its own price.
- Dedicated hosts, capacity reservations (used, unused, allocated) and spot have no pool.
"""

from __future__ import annotations

import re

from billing.catalogs.book import SHORT_PAYMENT, slug

NAMED_SIZES = {"nano": 0.25, "micro": 0.5, "small": 1.0, "medium": 2.0, "large": 4.0, "xlarge": 8.0}
NOT_SIZE_FLEXIBLE = {"g4ad", "g4dn", "g5", "g5g", "inf1"}
PAYMENT = {"no upfront": "no_upfront", "partial upfront": "partial_upfront", "all upfront": "all_upfront"}

# operation code -> (operating system as AWS names it, pre-installed software, bring your own license)
OPERATIONS: dict[str, tuple[str, str, bool]] = {
    "RunInstances": ("Linux", "", False),
    "RunInstances:0002": ("Windows", "", False),
    "RunInstances:0800": ("Windows", "", True),
    "RunInstances:0006": ("Windows", "sql-std", False),
    "RunInstances:0102": ("Windows", "sql-ent", False),
    "RunInstances:0202": ("Windows", "sql-web", False),
    "RunInstances:0004": ("Linux", "sql-std", False),
    "RunInstances:0100": ("Linux", "sql-ent", False),
    "RunInstances:0200": ("Linux", "sql-web", False),
    "RunInstances:0010": ("RHEL", "", False),
    "RunInstances:0014": ("RHEL", "sql-std", False),
    "RunInstances:0110": ("RHEL", "sql-ent", False),
    "RunInstances:0210": ("RHEL", "sql-web", False),
    "RunInstances:1010": ("Red Hat Enterprise Linux with HA", "", False),
    "RunInstances:1014": ("Red Hat Enterprise Linux with HA", "sql-std", False),
    "RunInstances:1110": ("Red Hat Enterprise Linux with HA", "sql-ent", False),
    "RunInstances:000g": ("SUSE", "", False),
    "RunInstances:0g00": ("Ubuntu Pro", "", False),
}
SOFTWARE = {"": "", "na": "", "sql web": "sql-web", "sql std": "sql-std", "sql ent": "sql-ent"}


def split_type(instance_type: str) -> tuple[str, str]:
    """``m5.2xlarge`` -> (``m5``, ``2xlarge``); a bare family (dedicated host rows) has no size."""
    family, _, size = instance_type.partition(".")
    return family, size


def size_factor(size: str) -> float | None:
    """Normalization factor from the size name; None for ``metal`` (the family decides) or unknown sizes."""
    if size in NAMED_SIZES:
        return NAMED_SIZES[size]
    match = re.fullmatch(r"(\d+)xlarge", size) or re.fullmatch(r"metal-(\d+)xl", size)
    return 8.0 * int(match.group(1)) if match else None


def family_largest(instance_types: set[str]) -> dict[str, float]:
    """Per family, the factor of its largest named size among ``instance_types`` (what ``metal`` equals)."""
    largest: dict[str, float] = {}
    for instance_type in instance_types:
        family, size = split_type(instance_type)
        factor = size_factor(size) if size != "metal" else None
        if factor is not None:
            largest[family] = max(largest.get(family, 0.0), factor)
    return largest


def normalization_factor(instance_type: str, largest: dict[str, float], listed: float | None = None) -> float | None:
    """NF by name; ``metal`` takes the family's largest size, else the price list's own factor."""
    family, size = split_type(instance_type)
    if size == "metal":
        return largest.get(family) or listed
    return size_factor(size)


def os_slug(os_name: str, software: str = "", byol: bool = False, dedicated: bool = False) -> str:
    parts = [slug(os_name) or "linux"]
    if software:
        parts.append(software)
    if byol:
        parts.append("byol")
    if dedicated:
        parts.append("dedicated")
    return "-".join(parts)


def size_flexible(family: str, os_name: str, software: str, byol: bool, dedicated: bool) -> bool:
    return slug(os_name) == "linux" and not software and not byol and not dedicated and family not in NOT_SIZE_FLEXIBLE


def pool_for(region: str, instance_type: str, os_name: str, software: str, byol: bool, dedicated: bool) -> tuple[str, bool]:
    """(pool id, size-flexible) for EC2 usage of ``instance_type`` in ``region``."""
    family, _ = split_type(instance_type)
    if size_flexible(family, os_name, software, byol, dedicated):
        return f"aws:ec2:{region}:{family}:linux", True
    return f"aws:ec2:{region}:{instance_type}:{os_slug(os_name, software, byol, dedicated)}", False


def reservation_id(pool: str, months: int, offering_class: str, payment: str) -> str:
    """``aws-ri-m5-us-east-1-linux-1y-standard-partial`` (readable, stable across file versions)."""
    _, _, region, family, os = pool.split(":")
    return f"aws-ri-{family}-{region}-{os}-{months // 12}y-{offering_class}-{SHORT_PAYMENT[payment]}"


def lease_months(text: str) -> int | None:
    """``1yr`` / ``3 yr`` / ``1`` (years) -> months."""
    match = re.fullmatch(r"\s*(\d+)\s*(yr|year|years)?\s*", text.lower())
    return 12 * int(match.group(1)) if match else None
