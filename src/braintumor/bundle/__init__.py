"""Make the shipped artifact: a model bundle created from training runs (``create.py``).

Creating a bundle may fit the region-feature forest (:mod:`braintumor.training.region_forest`), so it
sits above ``training``; reading, verifying, loading and exporting a bundle are
:mod:`braintumor.inference`'s (``bundle_store``, ``bundle_checks``, ``bundle``, ``export``), which never
imports ``training``.
"""
