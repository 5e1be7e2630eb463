"""Per-chapter code: the demos behind each notebook's widgets, its experiments and the reference
solutions of its exercises. Notebooks import from here so that they stay thin and so that the tests
can exercise every demo (extreme widget values included) without a browser."""
