"""Executors: run task scripts locally or on a scheduler, claim, track and cancel them."""
