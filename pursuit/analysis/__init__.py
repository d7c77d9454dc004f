"""Analysis of the flat results table. Imports nothing else of Pursuit."""
