"""Results file, terminal summary and HTML report, all built from one matrix model."""
