"""Which commitment pool a usage row belongs to, and how much of the pool's unit it uses.

The provider rules of DESIGN.md §5, as SQL over a row's ledger values, so that they run inside
the ingest query:

- AWS EC2: regional Linux reservations (shared tenancy, no SQL Server, no BYOL) are size-flexible
  within a family, so that usage goes to ``aws:ec2:{region}:{family}:linux`` in normalized units
  (hours × the size's normalization factor: nano 0.25, micro 0.5, small 1, medium 2, large 4,
  xlarge 8, Nxlarge 8N; the bill's own factor where it gives one). Everything else (other
  operating systems, SQL Server, BYOL, dedicated tenancy, the families AWS excludes) is one pool
  per instance type, ``aws:ec2:{region}:{instance_type}:{os}`` in instance-hours, ``os`` spelled
  as the price catalogs spell it (``windows-sql-web-dedicated``). Spot usage and dedicated hosts
  have no pool.
- Azure VMs: ``azure:vm:{region}:{meter}`` in instance-hours (the export carries no
  instance-size-flexibility ratios, so sizes are kept apart; the reservation covers one meter).
- GCP Compute Engine: resource-based CUDs commit vCPU and memory per region and machine series,
  so cores go to ``gcp:compute:{region}:{series}:vcpu`` (vCPU-hours) and RAM to
  ``...:memory`` (GiB-hours). Spot/preemptible SKUs have no pool.

A row with no pool is usage no commitment can cover; ``billing.pools`` reports it.
"""

from __future__ import annotations


def slug(sql: str) -> str:
    """Lower case, runs of anything but letters, digits, dots and dashes as one dash."""
    return f"trim(regexp_replace(lower({sql}), '[^a-z0-9.\\-]+', '-', 'g'), '-')"


def aws_normalization_factor(instance_type: str) -> str:
    size = f"split_part({instance_type}, '.', 2)"
    return (
        f"CASE {size} WHEN 'nano' THEN 0.25 WHEN 'micro' THEN 0.5 WHEN 'small' THEN 1 "
        f"WHEN 'medium' THEN 2 WHEN 'large' THEN 4 WHEN 'xlarge' THEN 8 "
        f"ELSE 8 * TRY_CAST(regexp_extract({size}, '^([0-9]+)xlarge$', 1) AS INTEGER) END"
    )


NOT_SIZE_FLEXIBLE = ("g4ad", "g4dn", "g5", "g5g", "inf1")
"""Families AWS leaves out of size flexibility (as ``billing.catalogs.aws_common`` prices them)."""


def aws_os(os_text: str, software: str = "NULL", byol: str = "false", dedicated: str = "false") -> str:
    """The OS part of a pool id, as the price catalogs write it: linux for Linux/UNIX, else the slug
    of what the bill says (windows, rhel, suse …), then -sql-web/-sql-std/-sql-ent for pre-installed
    SQL Server, -byol and -dedicated, because each of those has its own price."""
    base = (
        f"CASE WHEN {os_text} IS NULL OR lower({os_text}) IN ('linux', 'linux/unix') "
        f"THEN 'linux' ELSE {slug(os_text)} END"
    )
    sql = (
        f"CASE lower(coalesce({software}, '')) WHEN 'sql web' THEN '-sql-web' WHEN 'web' THEN '-sql-web' "
        f"WHEN 'sql std' THEN '-sql-std' WHEN 'standard' THEN '-sql-std' WHEN 'std' THEN '-sql-std' "
        f"WHEN 'sql ent' THEN '-sql-ent' WHEN 'enterprise' THEN '-sql-ent' WHEN 'ent' THEN '-sql-ent' ELSE '' END"
    )
    return (
        f"({base} || {sql} || CASE WHEN {byol} THEN '-byol' ELSE '' END "
        f"|| CASE WHEN {dedicated} THEN '-dedicated' ELSE '' END)"
    )


def aws_ec2_pool(region: str, instance_type: str, os_name: str, hours: str,
                 bill_factor: str = "NULL") -> tuple[str, str]:
    """(pool, quantity) for EC2 instance usage; the caller passes NULL hours for other rows."""
    factor = f"coalesce(NULLIF({bill_factor}, 0), {aws_normalization_factor(instance_type)})"
    family = f"split_part({instance_type}, '.', 1)"
    flexible = f"({os_name} = 'linux' AND {factor} IS NOT NULL AND {family} NOT IN {NOT_SIZE_FLEXIBLE})"
    pool = (
        f"CASE WHEN {hours} IS NULL OR {instance_type} IS NULL OR {region} IS NULL THEN NULL "
        f"WHEN {flexible} THEN 'aws:ec2:' || {region} || ':' || {family} || ':linux' "
        f"ELSE 'aws:ec2:' || {region} || ':' || {instance_type} || ':' || {os_name} END"
    )
    quantity = (
        f"CASE WHEN {hours} IS NULL OR {instance_type} IS NULL OR {region} IS NULL THEN NULL "
        f"WHEN {flexible} THEN {hours} * {factor} ELSE {hours} END"
    )
    return pool, quantity


def azure_vm_pool(region: str, meter: str, hours: str) -> tuple[str, str]:
    pool = (
        f"CASE WHEN {hours} IS NULL OR {meter} IS NULL OR {region} IS NULL THEN NULL "
        f"ELSE 'azure:vm:' || {slug(region)} || ':' || {slug(meter)} END"
    )
    return pool, f"CASE WHEN {hours} IS NULL OR {meter} IS NULL OR {region} IS NULL THEN NULL ELSE {hours} END"


def gcp_compute_pool(region: str, sku_description: str, amount: str) -> tuple[str, str]:
    """Cores and RAM of a machine series, from SKU descriptions such as 'N2 Instance Core running in
    Americas', 'C2D AMD Instance Ram …', 'N1 Predefined Instance Core …', 'M3 Memory-optimized
    Instance Core …', 'Compute optimized Core …' (C2) and 'Memory-optimized Instance Ram …' (M1 and
    M2 share that SKU and its commitment; their pool is m1). Custom machine types count in their
    series' pool, as the series' commitments cover them (at on-demand they cost ~5% more than the
    predefined rate the pool is priced at)."""
    named = (
        f"lower(regexp_extract({sku_description}, "
        f"'^([A-Za-z0-9]+) (?:AMD |Arm |Predefined |Memory-optimized )?(?:Custom )?Instance (?:Core|Ram)', 1))"
    )
    series = (
        f"CASE WHEN regexp_matches({sku_description}, '^Compute optimized (?:Core|Ram)') THEN 'c2' "
        f"WHEN regexp_matches({sku_description}, '^Memory-optimized Instance (?:Core|Ram)') THEN 'm1' "
        f"WHEN regexp_matches({sku_description}, '^Custom Instance (?:Core|Ram)') THEN 'n1' "
        f"ELSE {named} END"
    )
    resource = (
        f"CASE WHEN regexp_matches({sku_description}, '(?:Instance )?Core running') THEN 'vcpu' "
        f"WHEN regexp_matches({sku_description}, '(?:Instance )?Ram running') THEN 'memory' END"
    )
    covered = (
        f"({amount} IS NOT NULL AND {region} IS NOT NULL AND {series} <> '' AND {resource} IS NOT NULL "
        f"AND NOT regexp_matches(lower({sku_description}), 'spot|preemptible|commitment|sole tenancy|premium'))"
    )
    pool = f"CASE WHEN {covered} THEN 'gcp:compute:' || {region} || ':' || {series} || ':' || {resource} END"
    return pool, f"CASE WHEN {covered} THEN {amount} END"


def gcp_machine_pools(region: str, series: str, cores: str, memory_gib: str, hours: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """FOCUS rows name the machine type (SkuPriceDetails: InstanceSeries, CoreCount, MemorySize):
    its hours use cores × hours of the series' vCPU pool and GiB × hours of its memory pool."""
    ok = f"({hours} IS NOT NULL AND {region} IS NOT NULL AND coalesce({series}, '') <> '')"
    base = f"'gcp:compute:' || {region} || ':' || lower({series})"
    vcpu = (f"CASE WHEN {ok} AND {cores} IS NOT NULL THEN {base} || ':vcpu' END",
            f"CASE WHEN {ok} AND {cores} IS NOT NULL THEN {hours} * {cores} END")
    memory = (f"CASE WHEN {ok} AND {memory_gib} IS NOT NULL THEN {base} || ':memory' END",
              f"CASE WHEN {ok} AND {memory_gib} IS NOT NULL THEN {hours} * {memory_gib} END")
    return vcpu, memory
