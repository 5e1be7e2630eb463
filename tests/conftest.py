"""Unit tests draw figures off-screen (the notebooks, run by nbval, use the inline backend)."""
import matplotlib

matplotlib.use("Agg")
