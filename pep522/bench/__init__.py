"""The benchmark: the patched interpreter against stock, side by side."""
