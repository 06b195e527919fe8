"""Running the design: the grid of runs and its results, the settings sweeps."""
