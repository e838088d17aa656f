"""CEDS grade-level codes: the grades the roster stores, whatever format an upload comes in."""

from __future__ import annotations

CEDS_GRADES = (
    "IT",
    "PR",
    "PK",
    "TK",
    "KG",
    *(f"{n:02d}" for n in range(1, 14)),
    "PS",
    "UG",
    "Other",
)
