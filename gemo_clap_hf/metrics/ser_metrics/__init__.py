"""Folder of the local `evaluate` module `ser_metrics`; a regular package so that every wheel build ships it."""
