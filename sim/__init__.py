"""NumPy reference model of the Ditto algorithm and cycle model of the Ditto hardware."""
