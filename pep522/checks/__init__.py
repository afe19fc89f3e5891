"""What make test and test-variants run, and what they expect to see."""
