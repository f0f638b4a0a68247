"""The shipped rule types; importing this package registers every one of them."""

from policies.rules import code, diff, evaluation, oversight, shadowing, tests

__all__ = ["code", "diff", "evaluation", "oversight", "shadowing", "tests"]
