"""What is shipped to packagers: the series in the forms their tools take."""
