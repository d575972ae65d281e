"""The optimization: formulation, backends, decomposition, rounding, and the hour-by-hour bill simulator."""
