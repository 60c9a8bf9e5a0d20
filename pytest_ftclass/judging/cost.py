"""What the tokens cost: prices per model, in US dollars per million input and output tokens.

A price is written ``MODEL=INPUT,OUTPUT`` (``ft_prices``, one per line): the
model id, ``=``, then the dollars per million prompt tokens and per million
completion tokens.  The model may be a shell-style pattern (``ft:gpt-4o-mini-*``);
a model's price is the one naming it exactly, else the first pattern matching it.

>>> price = Price.parse("ft:gpt-4o-mini-2024-07-18:*=0.30,1.20")
>>> price_for("ft:gpt-4o-mini-2024-07-18:acme::xyz", [price]) == price
True
>>> cost = estimate_cost({"prompt_tokens": 2_000_000, "completion_tokens": 10_000}, price)
>>> cost["usd"], cost["input_usd"], cost["output_usd"]
(0.612, 0.6, 0.012)
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Price", "estimate_cost", "price_for"]

_PRICE = re.compile(
    r"^\s*(?P<model>\S+?)\s*=\s*(?P<input>[0-9.eE+-]+)\s*,\s*(?P<output>[0-9.eE+-]+)\s*$"
)


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt (``input``) and completion (``output``) tokens of ``model``."""

    model: str
    input: float
    output: float

    @classmethod
    def parse(cls, text: str) -> Price:
        """``MODEL=INPUT,OUTPUT``; ``ValueError`` says what is wrong.

        >>> Price.parse("local=0,0")
        Price(model='local', input=0.0, output=0.0)
        """
        match = _PRICE.match(text)
        if not match:
            raise ValueError(
                f"expected MODEL=INPUT,OUTPUT in dollars per million tokens "
                f"(e.g. ft:gpt-4o-mini-2024-07-18:*=0.30,1.20), got {text!r}"
            )
        try:
            price = cls(match["model"], float(match["input"]), float(match["output"]))
        except ValueError:
            raise ValueError(f"not a number in {text!r}") from None
        if price.input < 0 or price.output < 0:
            raise ValueError(f"a price cannot be negative: {text!r}")
        return price

    def __str__(self) -> str:
        return f"{self.model}={self.input:g},{self.output:g}"


def price_for(model: str, prices: Iterable[Price]) -> Price | None:
    """The price of ``model``: the exact one, else the first pattern matching it, else ``None``."""
    listed = list(prices)
    for price in listed:
        if price.model == model:
            return price
    for price in listed:
        if fnmatch.fnmatchcase(model, price.model):
            return price
    return None


def estimate_cost(usage: Mapping[str, Any] | None, price: Price | None) -> dict[str, Any] | None:
    """The dollars ``usage`` (summed ``prompt_tokens``, ``completion_tokens``) costs at ``price``.

    ``None`` without a price or without usage.
    """
    if price is None or not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    input_usd = prompt * price.input / 1_000_000
    output_usd = completion * price.output / 1_000_000
    return {
        "usd": round(input_usd + output_usd, 9),
        "input_usd": round(input_usd, 9),
        "output_usd": round(output_usd, 9),
        "price": {"model": price.model, "input_per_million": price.input,
                  "output_per_million": price.output},
    }  # fmt: skip
