"""FOCUS ServiceCategory for exports that do not carry one (CUR, Azure cost details, GCP).

FOCUS requires one category per service. The service name decides it, so a service never lands
in two categories; names we do not know are 'Other' (a FOCUS value).
"""

from __future__ import annotations

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Compute", ("amazonec2", "elastic compute cloud", "lambda", "elastic container", "kubernetes",
                 "virtual machines", "compute engine", "cloud run", "functions", "app service", "batch",
                 "fargate", "lightsail")),
    ("Databases", ("rds", "relational database", "dynamodb", "sql database", "cloud sql", "database for",
                   "sql managed instance", "cosmos", "elasticache", "redshift", "spanner", "bigtable", "firestore")),
    ("Storage", ("amazons3", "simple storage", "amazonefs", "elastic file system", "backup", "glacier",
                 "storage")),
    ("Networking", ("vpc", "virtual private cloud", "virtual network", "bandwidth", "load balanc", "cloudfront",
                    "route 53", "route53", "data transfer", "networking", "dns", "cdn", "nat gateway")),
    ("Integration", ("queue", "amazonsqs", "amazonsns", "notification service", "amazonstates", "step functions",
                     "event hubs", "service bus", "pub/sub", "eventbridge")),
    ("Analytics", ("glue", "bigquery", "athena", "log analytics", "kinesis", "dataflow", "emr", "databricks")),
    ("Management and Governance", ("cloudwatch", "cloudtrail", "monitor", "cloudshell", "config", "logging",
                                   "cloud operations")),
    ("Security", ("kms", "key management", "secrets", "threat protection", "data security", "guardduty", "waf",
                  "defender", "security")),
    ("Migration", ("migration",)),
    ("AI and Machine Learning", ("sagemaker", "bedrock", "vertex", "cognitive", "openai", "machine learning")),
)


def service_category(service_sql: str) -> str:
    """SQL: the FOCUS ServiceCategory of the service named by ``service_sql``."""
    name = f"lower(coalesce({service_sql}, ''))"
    branches = " ".join(
        "WHEN " + " OR ".join(f"{name} LIKE '%{needle}%'" for needle in needles) + f" THEN '{category}'"
        for category, needles in CATEGORIES
    )
    return f"CASE {branches} ELSE 'Other' END"
