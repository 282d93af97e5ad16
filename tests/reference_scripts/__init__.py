"""Independent reference computations (numpy/scipy only, no neurojax) for values the
tests compare with. Each module can be run as a script to print its numbers."""
