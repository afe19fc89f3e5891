"""The RNG simulator (a kernel RNG not ready yet) and children run under it."""
