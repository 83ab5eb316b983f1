"""Changing a protected database only as approved: the plan and its approval, applying exactly
what was planned, the ledger of what was applied, and drift from what the history implies."""
