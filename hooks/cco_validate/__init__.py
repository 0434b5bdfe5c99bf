"""Validation of a rendered CCO repository: `checks` holds the checks, `runner` runs a level of them."""
