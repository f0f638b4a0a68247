"""What a model call costs: a price table per model, in dollars per million tokens.

    price = price_for("claude-sonnet-5-5")
    dollars = price.cost(input_tokens=1200, output_tokens=300, cache_read_tokens=9000)

Prices follow the provider's published list (base input, 5-minute cache writes, cache hits,
output). An unknown model id gets a clear warning and the most expensive known rates, so a budget
is never under-counted; add the model to PRICES to silence it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

MILLION = 1_000_000
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens."""

    input: float
    output: float
    cache_write: float
    """5-minute cache writes (the TTL this agent asks for)."""
    cache_read: float
    long_prompt: Price | None = None
    """Rates for every token of a request whose prompt exceeds long_prompt_tokens (if priced so)."""
    long_prompt_tokens: int = 0

    def cost(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        prompt = input_tokens + cache_read_tokens + cache_write_tokens
        rates = self.long_prompt if self.long_prompt and prompt > self.long_prompt_tokens else self
        return (
            input_tokens * rates.input
            + output_tokens * rates.output
            + cache_read_tokens * rates.cache_read
            + cache_write_tokens * rates.cache_write
        ) / MILLION


_OPUS_4_5_TO_5 = Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50)
_SONNET_4 = Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30)

PRICES: dict[str, Price] = {
    "claude-fable-5-1": Price(input=10.0, output=50.0, cache_write=12.5, cache_read=0.25),
    "claude-mythos-5-1": Price(input=10.0, output=50.0, cache_write=12.5, cache_read=0.25),
    "claude-fable-5": Price(input=10.0, output=50.0, cache_write=12.5, cache_read=1.0),
    "claude-mythos-5": Price(input=10.0, output=50.0, cache_write=12.5, cache_read=1.0),
    "claude-opus-5-5": Price(input=4.0, output=20.0, cache_write=5.0, cache_read=0.20),
    "claude-opus-5": _OPUS_4_5_TO_5,
    "claude-opus-4-8": _OPUS_4_5_TO_5,
    "claude-opus-4-7": _OPUS_4_5_TO_5,
    "claude-opus-4-6": _OPUS_4_5_TO_5,
    "claude-opus-4-5": _OPUS_4_5_TO_5,
    "claude-sonnet-5-5": Price(input=2.0, output=10.0, cache_write=2.5, cache_read=0.10),
    "claude-sonnet-5": Price(input=2.0, output=10.0, cache_write=2.5, cache_read=0.20),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-haiku-5-5": Price(
        input=0.10,
        output=0.50,
        cache_write=0.125,
        cache_read=0.01,
        long_prompt=Price(input=0.50, output=2.50, cache_write=0.625, cache_read=0.05),
        long_prompt_tokens=100_000,
    ),
    "claude-haiku-4-5": Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10),
}

CONSERVATIVE = Price(input=15.0, output=75.0, cache_write=18.75, cache_read=1.50)
"""Used for a model the table does not know: the highest rates of any Claude model listed."""

_warned: set[str] = set()


def price_for(model: str) -> Price:
    """The model's price; an unknown id (after dropping a -YYYYMMDD suffix) warns once, then is conservative."""
    known = PRICES.get(model) or PRICES.get(_DATE_SUFFIX.sub("", model))
    if known is not None:
        return known
    if model not in _warned:
        _warned.add(model)
        log.warning(
            "no price known for model %r: counting its spend at $%.2f/$%.2f per million input/output "
            "tokens (the most expensive rates) so that budgets stay safe. Add it to agent.pricing.PRICES.",
            model,
            CONSERVATIVE.input,
            CONSERVATIVE.output,
        )
    return CONSERVATIVE


def is_known(model: str) -> bool:
    return model in PRICES or _DATE_SUFFIX.sub("", model) in PRICES
