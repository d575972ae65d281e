"""Who and what explains an anomaly: the top (service, account, region) combinations by excess
and the likely owner, from each cell's own baseline on the day of the anomaly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from billing.anomaly_baseline import BaselineParams, baseline
from billing.anomaly_series import DailySpend

TOP_CONTRIBUTORS = 3


@dataclass(frozen=True)
class Contributor:
    """A (service, account, region) combination and its share of the day's excess."""

    service: str
    account: str
    region: str
    amount: float
    expected: float
    excess: float

    def to_json(self) -> dict:
        return {"service": self.service, "account": self.account, "region": self.region,
                "amount": round(self.amount, 2), "expected": round(self.expected, 2), "excess": round(self.excess, 2)}


def attribute(daily: DailySpend, members: np.ndarray, t: int, params: BaselineParams = BaselineParams()
              ) -> tuple[tuple[Contributor, ...], str | None]:
    """The top (service, account, region) combinations by excess on day ``t`` among the cells
    ``members``, and the likely owner: the owner tag value (else the account name, else the
    account) whose cells add the most excess. Each cell's expected spend is its own baseline."""
    w = params.window
    history = daily.spend[members, max(0, t - w) : t]
    history = np.where(daily.present[None, max(0, t - w) : t], history, np.nan)
    window = np.concatenate([np.full((len(members), w - history.shape[1]), np.nan), history], axis=1)
    mask = np.ones(window.shape, dtype=bool)
    expected = baseline(window, mask, mask, params).expected
    fallback = np.nanmedian(np.where(np.isnan(window), 0.0, window)[:, -params.level_days:], axis=1)
    expected = np.where(np.isnan(expected), fallback, expected)
    cells = daily.cells.iloc[members].reset_index(drop=True)
    frame = cells.assign(amount=daily.spend[members, t], expected=expected)
    frame["excess"] = frame["amount"] - frame["expected"]
    combos = frame.groupby(["service", "account", "region"], sort=True, dropna=False)[
        ["amount", "expected", "excess"]].sum().reset_index()
    combos = combos[combos["excess"] > 0].sort_values(["excess", "service", "account", "region"],
                                                      ascending=[False, True, True, True], kind="stable")
    top = tuple(Contributor(str(r.service), str(r.account), str(r.region), float(r.amount), float(r.expected),
                            float(r.excess)) for r in combos.head(TOP_CONTRIBUTORS).itertuples())
    owner = cells["account_name"].where(cells["account_name"].notna(), cells["account"])
    if daily.owner_key is not None:
        tag = cells[f"tag:{daily.owner_key}"]
        owner = tag.where(tag.notna(), owner)
    by_owner = frame.assign(owner=owner).groupby("owner", sort=True)["excess"].sum()
    by_owner = by_owner[by_owner > 0]
    return top, (str(by_owner.idxmax()) if len(by_owner) else None)
