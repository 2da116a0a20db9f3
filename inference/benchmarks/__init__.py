"""Speed benchmarks of the inference library (``maskwright bench <method>``)."""
