"""rsi-sandbox: a workbench for studying recursive self-improvement under human control."""

__version__ = "0.1.0"
